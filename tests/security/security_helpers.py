"""SQL that tries to write, reach other files or change the connection, and a fingerprint of
every file under a directory, for the attack tests of tests/security/.

Each attack is a statement template: ``{w}`` the warehouse root, ``{data}`` a data file the
views read, ``{stray}`` a Parquet file in a table's folder that no commit names, ``{outside}``
a directory outside the warehouse, ``{cwd}`` the current directory (which holds ``.tmp``, a
symlink to ``{outside}``: DuckDB's default temporary directory)."""
from __future__ import annotations

import hashlib
import os

ATTACKS = {
    # COPY where DuckDB parses the statement as a SELECT, and runs the COPY
    "copy-in-cte": "WITH x AS (COPY (select 1 a) TO '{w}/pwn.csv') select 1",
    "copy-in-cte-read": "with x as (copy (select 1 a) to '{w}/pwn.csv') select * from x",
    "copy-partition-overwrite": "WITH x AS (COPY (select 1 a, 2 b) TO '{w}/neurons' "
                                "(FORMAT parquet, PARTITION_BY (b), OVERWRITE true)) select 1",
    "copy-over-a-data-file": "with x as (copy (select * from explanations limit 1) to '{data}' "
                             "(format parquet, use_tmp_file false)) select count(*) from explanations",
    "copy-outside": "with x as (copy (select 1 a) to '{outside}/pwn.csv') select 1",
    "copy-to-cwd": "with x as (copy (select 1 a) to 'pwn.csv') select 1",
    "copy-into-dot-tmp": "with x as (copy (select 1 a) to '.tmp/pwn.csv') select 1",
    "copy-mixed-case": "with x as (CoPy (select 1 a) To '{w}/pwn.csv') select 1",
    "copy-comment-inside": "WITH x AS (/* select */ COPY (select 1) TO '{w}/pwn.csv') SELECT 1",
    "copy-plain": "COPY explanations TO '{w}/pwn.parquet' (FORMAT parquet)",
    "explain-analyze-copy": "EXPLAIN ANALYZE COPY (select 1) TO '{w}/pwn.csv'",
    "explain-analyze-copy-in-cte": "explain analyze with x as (copy (select 1 a) to '{w}/pwn.csv') select 1",
    "explain-options-copy": "explain analyze (format json) copy (select 1) to '{w}/pwn.csv'",
    # other statements
    "attach": "ATTACH '{w}/pwn.db' AS pwn",
    "attach-in-cte": "with x as (attach '{w}/pwn.db' as p) select 1",
    "detach": "DETACH memory",
    "install": "INSTALL httpfs",
    "force-install": "FORCE INSTALL httpfs",
    "load": "LOAD httpfs",
    "set": "SET enable_external_access = true",
    "set-allowed": "SET allowed_directories = ['/']",
    "reset": "RESET allowed_paths",
    "pragma": "PRAGMA enable_profiling",
    "pragma-output": "PRAGMA profiling_output = '{w}/pwn.json'",
    "export": "EXPORT DATABASE '{w}/pwn'",
    "import": "IMPORT DATABASE '{outside}'",
    "create-table": "CREATE TABLE pwn AS SELECT 1",
    "create-view": "CREATE OR REPLACE VIEW explanations AS SELECT 1",
    "create-macro": "CREATE MACRO pwn() AS 1",
    "create-secret": "CREATE SECRET pwn (TYPE s3, KEY_ID 'x', SECRET 'y')",
    "create-persistent-secret": "CREATE PERSISTENT SECRET pwn (TYPE s3, KEY_ID 'x', SECRET 'y')",
    "insert": "INSERT INTO explanations SELECT * FROM explanations",
    "insert-in-cte": "with x as (insert into explanations select * from explanations) select 1",
    "delete": "DELETE FROM explanations",
    "update": "UPDATE explanations SET score = 1",
    "drop": "DROP VIEW explanations",
    "call": "CALL enable_logging(storage = 'file', storage_path = '{w}/logs')",
    "checkpoint": "CHECKPOINT",
    "vacuum": "VACUUM",
    "use": "USE system",
    "prepare": "PREPARE p AS COPY (select 1) TO '{w}/pwn.csv'",
    # reading what is not the views' files
    "read-text-passwd": "select * from read_text('/etc/passwd')",
    "read-blob-passwd": "select * from read_blob('/etc/passwd')",
    "read-csv-passwd": "select * from read_csv('/etc/passwd')",
    "glob-etc": "select * from glob('/etc/*')",
    "glob-warehouse": "select * from glob('{w}/**')",
    "read-the-delta-log": "select * from read_text('{w}/explanations/_delta_log/00000000000000000000.json')",
    "read-an-uncommitted-file": "select * from read_parquet('{stray}')",
    "read-every-parquet-file": "select count(*) from read_parquet('{w}/**/*.parquet')",
    "read-through-dot-tmp": "select * from read_text('.tmp/secret.txt')",
    "read-relative": "select * from read_text('../outside/secret.txt')",
    "replacement-scan": "select * from '/etc/passwd'",
    "http": "select * from read_csv('http://127.0.0.1:9/x.csv')",
    # functions that run SQL of their own or write
    "serialized-copy": "select * from json_execute_serialized_sql(json_serialize_sql("
                       "'with x as (copy (select 1 a) to ''{w}/pwn.csv'') select 1'))",
    "serialized-copy-quoted": "select * from \"json_execute_serialized_sql\"(json_serialize_sql("
                              "'with x as (copy (select 1 a) to ''{w}/pwn.csv'') select 1'))",
    "serialized-copy-qualified": "select * from system.main.json_execute_serialized_sql(json_serialize_sql("
                                 "'with x as (copy (select 1 a) to ''{w}/pwn.csv'') select 1'))",
    "query-function": "select * from query('select * from read_text(''/etc/passwd'')')",
    "enable-logging": "select * from enable_logging(storage = 'file', storage_path = '{w}/logs')",
    "write-log": "select write_log('pwn')",
    "force-checkpoint": "select * from force_checkpoint()",
    "setval": "select setval('s', 1)",
    # more than one statement, and keywords hidden from a naive reader
    "two-statements": "select 1; copy (select 1) to '{w}/pwn.csv'",
    "two-statements-comment": "select 1 /* ; */ ; /* */ copy (select 1) to '{w}/pwn.csv'",
    "two-statements-line-comment": "select 1 -- x\n; copy (select 1) to '{w}/pwn.csv'",
    "keyword-split-by-comment": "with x as (co/**/py (select 1) to '{w}/pwn.csv') select 1",
    "cyrillic-lookalike": "WITH x AS (\u0421OPY (select 1) TO '{w}/pwn.csv') select 1",
    "fullwidth-lookalike": "WITH x AS (\uff23\uff2f\uff30\uff39 (select 1) TO '{w}/pwn.csv') select 1",
    "zero-width-joiner": "WITH x AS (CO\u200dPY (select 1) TO '{w}/pwn.csv') select 1",
    "nul-byte": "select 1\x00; copy (select 1) to '{w}/pwn.csv'",
}


def fingerprint(root: str) -> dict[str, tuple[str, int, str]]:
    """Every entry under ``root`` (files, directories, links) by path: kind, size, SHA-256."""
    found = {}
    for directory, folders, files in os.walk(root):
        for name in folders:
            path = os.path.join(directory, name)
            found[path] = ("link" if os.path.islink(path) else "dir", 0, "")
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                found[path] = ("link", 0, os.readlink(path))
                continue
            with open(path, "rb") as f:
                found[path] = ("file", os.path.getsize(path), hashlib.sha256(f.read()).hexdigest())
    return found


def one_line(message: str) -> bool:
    return bool(message.strip()) and "\n" not in message.strip() and "Traceback" not in message
