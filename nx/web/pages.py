"""The viewer's pages. Each parses its URL (``params.py``), gets its data in the worker
pool, and answers as HTML or as its JSON twin (``respond.py``). State (database, index,
file index) is on ``request.app.state``; routes are listed in ``app.py``."""
from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from nx.errors import NotFoundError, QueryError, UsageError
from nx.queries import named
from nx.settings import DEFAULT_MODEL
from nx.web import (compare as compare_runs, contexts as context_search, home as overview, neuron_data, neuron_page,
                    neuron_pair, params)
from nx.web.catalog import Catalog
from nx.web.respond import JSONResponse, answers, respond, wants_json


async def _model(request: Request) -> str:
    index = request.app.state.index
    await index.ready()
    default = DEFAULT_MODEL if DEFAULT_MODEL in index.models or not index.models else index.models[0]
    return params.text(request.query_params.get("model"), "model", default=default, limit=100)


async def _catalog(request: Request, model: str) -> Catalog:
    index = request.app.state.index
    catalog = await index.catalog(model)
    if catalog is None:
        models = ", ".join(index.models) or "none: run nx ingest first"
        raise NotFoundError(f"model {model!r} is not in the warehouse (models: {models})")
    return catalog


def _run(value: str | None, catalog: Catalog, name: str, default: str | None = None) -> str | None:
    run = params.text(value, name, default=default, limit=100)
    if run is not None and run not in catalog.run_names():
        raise NotFoundError(f"run {run!r} is not in the warehouse for model {catalog.model} "
                            f"(runs: {', '.join(catalog.run_names()) or 'none'})")
    return run


def _common(request: Request, model: str) -> dict:
    """What every template gets: the model, and ``?model=...`` for links when it is not the default."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "page_size")]
    return {"model": model, "models": request.app.state.index.models,
            "model_query": "" if model == DEFAULT_MODEL else "?" + urlencode({"model": model}),
            "page_base": f"{request.url.path}?{urlencode(kept)}{'&' if kept else ''}"}


@answers
async def home(request: Request) -> Response:
    model = await _model(request)
    catalog = await _catalog(request, model)
    run = _run(request.query_params.get("run"), catalog, "run", default="public" if "public" in catalog.run_names()
               else (catalog.run_names() or [None])[0])
    threshold = params.real(request.query_params.get("threshold"), "threshold", default=0.8, low=-1, high=1)
    data = await overview.overview(request.app.state.database, request.app.state.index, model, run or "public",
                                   threshold)
    return respond(request, "home.html", data, _common(request, model))


@answers
async def search(request: Request) -> Response:
    model = await _model(request)
    catalog = await _catalog(request, model)
    q = request.query_params
    layers = catalog.layer_list or [0]
    query = {
        "text": params.text(q.get("q"), "q"),
        "run": _run(q.get("run"), catalog, "run"),
        "layer_min": params.whole(q.get("layer_min"), "layer_min", default=layers[0]),
        "layer_max": params.whole(q.get("layer_max"), "layer_max", default=layers[-1]),
        "min_score": params.real(q.get("min_score"), "min_score", low=-1, high=1),
    }
    if query["layer_min"] > query["layer_max"]:
        raise params.BadParameter(f"layer_min ({query['layer_min']}) is above layer_max ({query['layer_max']})")
    page, size = params.page(q, default_size=50)
    found = await request.app.state.index.run(overview.search, {**query, "model": model, "limit": size,
                                                                "offset": (page - 1) * size})
    data = {"model": model, "query": query, "page": page, "page_size": size, **found,
            "has_more": found["total"] > page * size}
    return respond(request, "search.html", data, {**_common(request, model), "runs": catalog.run_names(),
                                                   "layers": layers})


@answers
async def contexts(request: Request) -> Response:
    model = await _model(request)
    catalog = await _catalog(request, model)
    q = request.query_params
    layers = catalog.layer_list or [0]
    query = {"token": params.text(q.get("token"), "token"),
             "layer": params.whole(q.get("layer"), "layer", default=layers[0]),
             "sample": params.text(q.get("sample"), "sample"), "case": bool(q.get("case"))}
    if query["sample"] not in (None, "top", "random", "quantile"):
        raise params.BadParameter(f"sample must be top, random or quantile, not {query['sample']!r}")
    if not catalog.has_layer(query["layer"]):
        raise NotFoundError(f"layer {query['layer']} of model {model} is not in the warehouse ({catalog.describe_layers()})")
    page, size = params.page(q, default_size=50)
    data = {"model": model, "query": query, "page": page, "page_size": size, "total": 0, "rows": [], "has_more": False}
    if query["token"] is not None and query["token"].strip():
        found = await request.app.state.database.run(
            context_search.search, {**query, "model": model, "limit": size, "offset": (page - 1) * size})
        data.update(found, has_more=found["total"] > page * size)
    elif wants_json(request):
        raise UsageError("give a token as token=TEXT (and layer=L)")
    return respond(request, "contexts.html", data, {**_common(request, model), "layers": layers,
                                                    "shown": context_search.panes(data["rows"])})


@answers
async def neuron(request: Request) -> Response:
    model = await _model(request)
    catalog = await _catalog(request, model)
    layer_text = request.path_params["layer"]
    neuron_text = request.path_params["neuron"]
    layer, index = neuron_page.parse_ids(layer_text, neuron_text, catalog)
    state = request.app.state
    full = wants_json(request)

    def read(cursor):
        data = neuron_page.decorate(neuron_data.read(cursor, state.files, catalog, layer, index, full=full,
                                                     side=state.database.side), catalog)
        # The token heatmaps are built here too, in the worker: ~20 ms that would hold up the event loop.
        return data, None if full else neuron_page.panes(data)

    data, panes = await state.database.run(read)
    if full:
        return JSONResponse(data)
    return respond(request, "neuron.html", data, {**_common(request, model), **panes})


@answers
async def compare_neurons(request: Request) -> Response:
    model = await _model(request)
    catalog = await _catalog(request, model)
    q, state = request.query_params, request.app.state
    if not q.get("a") or not q.get("b"):
        if wants_json(request):
            raise UsageError("give two neurons as a=LAYER/NEURON&b=LAYER/NEURON")
        return respond(request, "compare_neurons.html", {"a": None, "b": None, "asked": (q.get("a"), q.get("b"))},
                       _common(request, model))
    pair = [neuron_pair.parse(q.get(name), name, catalog) for name in ("a", "b")]

    def read(cursor):
        found = [neuron_data.read(cursor, state.files, catalog, layer, index, full=False) for layer, index in pair]
        data = neuron_pair.compare(*found)
        return data, neuron_pair.panes(data)

    data, panes = await state.database.run(read)
    if wants_json(request):
        return JSONResponse(data)
    return respond(request, "compare_neurons.html", data, {**_common(request, model), **panes})


@answers
async def random_neuron(request: Request) -> Response:
    model = await _model(request)
    catalog = await _catalog(request, model)
    picked = catalog.random_neuron()
    if picked is None:
        raise NotFoundError(f"model {model} has no neurons in the warehouse")
    url = f"/neuron/{picked[0]}/{picked[1]}" + _common(request, model)["model_query"]
    if wants_json(request):
        return JSONResponse({"model": model, "layer": picked[0], "neuron": picked[1], "url": url})
    return RedirectResponse(url, status_code=303)


@answers
async def queries(request: Request) -> Response:
    found = named.named_queries(request.app.state.database.warehouse)
    data = {"queries": [{"name": q.name, "description": q.description, "url": f"/queries/{q.name}",
                         "params": [{"name": p.name, "type": p.type, "default": p.default, "required": p.required,
                                     "help": p.help} for p in q.params]} for q in found.values()]}
    return respond(request, "queries.html", data, _common(request, DEFAULT_MODEL))


@answers
async def query(request: Request) -> Response:
    name = request.path_params["name"]
    state = request.app.state
    found = named.named_queries(state.database.warehouse)
    if name not in found:
        raise NotFoundError(f"no named query {name!r} (queries: {', '.join(found)})")
    chosen = found[name]
    page, size = params.page(request.query_params, default_size=50)
    given = {k: params.text(v, k) for k, v in request.query_params.items() if k not in ("page", "page_size")}
    bound = chosen.bind(given)
    try:
        result = await overview.run_named(state.database, state.index, chosen, bound, size, (page - 1) * size)
    except QueryError as exc:
        sentence = named.stopped_with(exc)  # nothing to show, and why: a 404
        if sentence is None:
            raise
        raise NotFoundError(sentence) from exc
    data = {"name": name, "description": chosen.description, "params": bound, "page": page, "page_size": size,
            **result}
    signature = [{"name": p.name, "type": p.type, "value": bound.get(p.name, p.default), "help": p.help}
                 for p in chosen.params]
    return respond(request, "query.html", data, {**_common(request, bound.get("model") or DEFAULT_MODEL),
                                                  "signature": signature})


@answers
async def compare(request: Request) -> Response:
    model = await _model(request)
    catalog = await _catalog(request, model)
    runs = catalog.run_names()
    q = request.query_params
    a = _run(q.get("a"), catalog, "a", default="public" if "public" in runs else (runs or [None])[0])
    others = [r for r in runs if r != a]
    b = _run(q.get("b"), catalog, "b", default=others[0] if others else None)
    limit = params.whole(q.get("limit"), "limit", default=50, low=1, high=params.MAX_PAGE_SIZE)
    data = {"model": model, "a": a, "b": b, "runs": catalog.runs}
    if a and b:
        data = {**data, **await request.app.state.index.run(compare_runs.compare, model, a, b, limit)}
    return respond(request, "compare.html", data, {**_common(request, model), "run_names": runs})
