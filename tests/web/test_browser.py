"""The viewer in a real browser: Debian's chromium driven by playwright (its own browser
download is not used), against a real server over the sample warehouse."""
from __future__ import annotations

import re

import pytest

from chromium import launched_chromium

pytestmark = pytest.mark.browser

HOSTILE_SCRIPT_TOKEN = "<script>window.__xss=2</script>"


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server.url)
    opened = context.new_page()
    opened.dialogs = []
    opened.errors = []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    context.close()


def rgb(style: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in re.findall(r"\d+", style)[:3])


def test_neuron_page_panes_heatmap_hover_and_links(page, tmp_path):
    answer = page.goto("/neuron/0/1")
    assert answer.status == 200, page.content()[:2000]
    for pane in ("#explanations", "#top-records", "#random-records", "#token-lookups", "#token-weights", "#related"):
        assert page.locator(pane).is_visible(), pane
    assert page.locator("#explanations .explanation").count() == 2  # public and my-run
    assert page.locator("#explanations .explanation").first.locator(".metric").count() == 5
    # the strongest token of the first top record is dark green, a weak one nearly white
    spans = page.locator("#top-records .record").first.locator(".t")
    values = [float(v) for v in spans.evaluate_all("els => els.map(e => e.title)")]
    strongest, weakest = values.index(max(values)), values.index(min(values))
    strong = rgb(spans.nth(strongest).evaluate("e => getComputedStyle(e).backgroundColor"))
    weak = rgb(spans.nth(weakest).evaluate("e => getComputedStyle(e).backgroundColor"))
    assert strong[1] > strong[0] + 60 and strong[1] > strong[2] + 40  # green
    assert min(weak) > 200                                           # pale
    # the exact value on hover
    spans.nth(strongest).hover()
    assert spans.nth(strongest).get_attribute("title") == f"{max(values):.4f}"
    # real vs simulated: each token drawn twice, the simulated one in blue
    pair = page.locator("#explanations .pair").first
    assert pair.locator(".t").count() == 2 and "real" in pair.get_attribute("title")
    page.screenshot(path=str(tmp_path / "neuron-page.png"), full_page=True)
    # links: a related neuron (with its explanation), then the next neuron
    related = page.locator('#related a.nlink[href="/neuron/1/2"]').first
    assert "references to" in related.locator("xpath=../..").inner_text()
    related.click()
    page.wait_for_url("**/neuron/1/2")
    assert page.locator("h1").inner_text() == "Neuron 1/2"
    page.go_back()
    page.locator('#related a.nlink[href="/neuron/7/4000"]').click()  # a neuron the warehouse lacks
    assert page.locator(".card.error .message").inner_text() == \
        "layer 7 of model gpt2-xl is not in the warehouse (layers 0-2)"  # a clear 404, no trace
    page.goto("/neuron/0/1")
    page.locator("#next-neuron").click()
    page.wait_for_url("**/neuron/0/2")
    page.locator("header.top a#random").click()
    page.wait_for_url(re.compile(r".*/neuron/\d+/\d+$"))
    assert not page.errors


def test_hostile_tokens_show_as_text_and_nothing_runs(page):
    page.goto("/neuron/0/0")
    page.locator("#explanations details.simulation").nth(1).evaluate("d => d.open = true")
    assert page.evaluate("window.__xss") is None and not page.dialogs
    assert page.locator("img").count() == 0
    shown = page.locator("#top-records .t", has_text=HOSTILE_SCRIPT_TOKEN)
    assert shown.count() >= 1 and shown.first.text_content() == HOSTILE_SCRIPT_TOKEN
    assert page.locator("#explanations .text", has_text='<img src=x onerror="window.__xss=1">').count() == 1
    # the right-to-left override is a visible sign, so the tokens after it keep their order
    assert page.locator("#top-records .ws", has_text="⟨U+202E⟩").count() >= 1
    assert page.locator("#top-records .record", has_text="<|endoftext|>").count() >= 1
    page.goto("/neuron/0/1")  # the sample's own <script>alert(1)</script> token
    assert page.locator(".t", has_text="<script>alert(1)</script>").count() >= 1 and not page.dialogs
    page.goto("/compare?a=public&b=my-run")
    page.wait_for_selector("#compare-plot .main-svg")
    assert page.locator("#compare-plot .scatterlayer .point").count() == 6  # one dot per shared neuron
    assert page.evaluate("window.__xss") is None and not page.dialogs and page.locator("#disagreements img").count() == 0
    assert not page.errors


def test_search_from_home_and_the_layer_picture(page, tmp_path):
    page.goto("/")
    page.wait_for_selector("#layer-plot .main-svg")  # Plotly, served by the viewer, drew the picture
    assert page.locator("#top-explained a.nlink").count() == 10
    page.screenshot(path=str(tmp_path / "home-page.png"), full_page=True)
    page.locator("form.search input[name=q]").fill("dog")
    page.locator("form.search input[name=layer_min]").fill("1")
    page.locator("form.search button").click()
    page.wait_for_url("**/search?**")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 2 and all("dog" in t for t in rows.all_inner_texts())
    rows.first.locator("a.nlink").click()
    page.wait_for_url(re.compile(r".*/neuron/[12]/\d+$"))
    assert "dog" in page.locator("#best-explanation").inner_text()
    assert not page.errors


def test_sql_box_runs_and_refuses(page):
    page.goto("/sql")
    page.locator("textarea[name=q]").fill("select layer, count(*) as n from explanations group by layer order by layer")
    page.locator("#sql-form button").click()
    page.wait_for_selector("#results table")
    assert page.locator("#results tbody tr").count() == 3
    assert "/sql?q=select+layer" in page.url  # a GET: the address holds the statement, to bookmark
    page.reload()
    assert page.locator("#results tbody tr").count() == 3
    page.locator("textarea[name=q]").fill("select 7 as seven")
    page.locator("textarea[name=q]").press("Control+Enter")
    page.wait_for_url("**/sql?q=select+7+as+seven**")
    assert page.locator("#results td.n").inner_text() == "7"
    page.locator("textarea[name=q]").fill("copy explanations to '/tmp/x.csv'")
    page.locator("#sql-form button").click()
    assert "only SELECT" in page.locator(".card.error .message").inner_text()
