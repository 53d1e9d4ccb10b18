"""The DuckDB fast path against the general path, on the real data and on hand-made dirt."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dashapp.clean import CleaningOptions
from dashapp.errors import NonFiniteError, TooLargeError
from dashapp.fastpath import prepare_fast
from dashapp.pipeline import PrepareOptions, prepare_file, prepare_path
from dashapp.settings import Limits

# Every line rule fires: a missing id in three spellings, an id with spaces, an impossible
# date, two spellings of a missing amount, an exact duplicate, a cancellation and a return.
EDGES = """invoice,customer,date,amount,note
1001,A1,01/15/2023 09:30,10.50,first
1001,A1,01/15/2023 09:30,10.50,first
1002, A1 ,01/20/2023 23:59,5.25,
1003,NA,01/21/2023 10:00,7.00,no id
1004,null,01/22/2023 10:00,7.00,no id
1005,,01/23/2023 10:00,7.00,no id
1006,B2,02/30/2023 10:00,9.00,bad date
1007,B2,03/01/2023 00:01,,no amount
1008,B2,03/02/2023 08:00, N/A ,no amount
C1009,B2,03/03/2023 12:00,4.00,cancelled
1010,B2,03/04/2023 13:00,-3.00,return
1011,C3,12/31/2023 23:59,100.00,
1012,C3,06/13/2023 00:00,20.00,
1013,D4,07/14/2023 18:45,0.00,
"""


def _assert_same(fast, general) -> None:
    assert fast is not None, "the fast path refused a file it should read"
    pd.testing.assert_frame_equal(fast.customers, general.customers)
    assert fast.report == general.report
    assert fast.cuts == general.cuts
    assert fast.reference_date == general.reference_date
    assert fast.content_hash == general.content_hash
    assert fast.numeric_features == general.numeric_features
    assert fast.default_features == general.default_features
    a, b = fast.ingested, general.ingested
    for name in ("shape", "mapping", "encoding", "file_format", "delimiter", "decimal",
                 "date_format", "date_ambiguous", "dayfirst", "bad_values", "notices",
                 "attributes", "categoricals", "id_synthesized"):
        assert getattr(a, name) == getattr(b, name), name
    assert list(a.table.columns) == list(b.table.columns)
    assert a.table.dtypes.to_dict() == b.table.dtypes.to_dict()
    assert len(a.table) == 0


# A hand-made file is small: one bad date is more than the 2% the caps allow by default.
LENIENT = Limits(max_bad_share=0.5)


def _both(path: Path, **options):
    opts = PrepareOptions(**{"limits": LENIENT, **options})
    return prepare_fast(path, opts), prepare_file(path, opts)


@pytest.fixture()
def edges(tmp_path) -> Path:
    path = tmp_path / "edges.csv"
    path.write_text(EDGES)
    return path


def test_fast001_edge_cases_equal_the_general_path(edges):
    fast, general = _both(edges)
    _assert_same(fast, general)
    counts = {r.rule: r.count for r in fast.report.rules}
    assert counts["missing_customer_id"] == 3
    assert counts["bad_order_date"] == 1
    assert counts["bad_amount"] == 2
    assert counts["duplicates"] == 1
    assert counts["returns"] == 2
    assert fast.ingested.bad_values == {"date": [(8, "02/30/2023 10:00")]}


def test_fast002_hand_worked_rfm(edges):
    fast = prepare_fast(edges, PrepareOptions(limits=LENIENT))
    rows = fast.customers.set_index("customer_id")
    # Reference date: the day after 12/31/2023 23:59, whatever its time of day.
    assert fast.reference_date == pd.Timestamp("2024-01-01")
    # A1: orders 1001 (twice the same line) and 1002, whose id ' A1 ' is stripped.
    assert rows.loc["A1", ["recency", "frequency", "monetary"]].tolist() == [346, 2, 26.25]
    # B2: 1006-1008 dropped; C1009 and the return net against nothing bought.
    assert rows.loc["B2", ["frequency", "monetary"]].tolist() == [0, -7.0]
    assert rows.loc["B2", "last_order"] == pd.Timestamp("2023-03-04")
    assert rows.loc["C3", ["recency", "frequency", "monetary"]].tolist() == [1, 2, 120.0]
    assert rows.loc["D4", "recency"] == 171
    assert fast.report.rows_read == 14 and fast.report.rows_kept == 8


def test_fast003_online_retail_equals_the_general_path(shared_data):
    # Country is a contact role, which only the general path keeps (last one in file
    # order); without it the fast path reads this file, with its 'NA' ids, CRLF lines,
    # quoted fields, cancellations and negative quantities.
    path = shared_data / "online_retail" / "online_retail_sample_20000.csv"
    fast, general = _both(path, mapping={"country": ""})
    _assert_same(fast, general)
    rules = {r.rule: r.count for r in fast.report.rules}
    assert rules["missing_customer_id"] == 5078
    assert rules["returns"] > 0 and rules["duplicates"] > 0


def test_fast025_without_a_content_hash_the_same_customers_and_no_hashing(edges, monkeypatch):
    # The command line asks for no content hash (it keeps no cache): neither path hashes
    # the file, and everything else is as with the hash.
    import dashapp.fastpath as fastpath_module
    import dashapp.pipeline as pipeline_module

    hashed_fast, hashed_general = _both(edges)
    assert hashed_fast.content_hash == hashed_general.content_hash != ""

    def refuse(*args, **kwargs):
        raise AssertionError("the file was hashed")

    monkeypatch.setattr(fastpath_module, "_Digest", refuse)
    monkeypatch.setattr(pipeline_module, "content_hash", refuse)
    fast, general = _both(edges, content_hash=False)
    assert fast.content_hash == general.content_hash == ""
    pd.testing.assert_frame_equal(fast.customers, hashed_fast.customers)
    assert fast.report == hashed_fast.report
    _assert_same(fast, general)


def test_fast004_online_retail_with_country_equals_the_general_path(shared_data):
    # Two customers of this sample buy from two countries: each keeps the last one of its
    # kept lines in file order, as pandas' groupby().last() gives it.
    path = shared_data / "online_retail" / "online_retail_sample_20000.csv"
    fast, general = _both(path)
    _assert_same(fast, general)
    rows = fast.customers.set_index("customer_id")
    lines = pd.read_csv(path, dtype=str).dropna(subset=["CustomerID"])
    for customer in ("12431", "12455"):
        assert lines.loc[lines["CustomerID"] == customer, "Country"].nunique() == 2
        assert rows.loc[customer, "country"] == \
            lines.loc[lines["CustomerID"] == customer, "Country"].iloc[-1]


# Customer A's lines in file order: Norway, then France in an order whose other line is a
# return, then a missing token, then Spain on a line with a bad date (dropped), then
# " Italy " on a cancelled line (kept: it nets). B's last country is in its first order.
# C has no country at all, D's id has spaces (the scan runs again with typed ids), and E's
# last line repeats its first exactly (a duplicate, and the last line in file order).
CONTACTS = """invoice,customer,date,amount,country,email
1,A,01/05/2023 10:00,10.00,Norway,a@x.org
2,B,01/06/2023 10:00,5.00,Sweden,
3,A,01/07/2023 10:00,4.00,France,a2@x.org
3,A,01/07/2023 10:00,-1.00,,
4,B,01/01/2023 10:00,6.00,,b@x.org
5,A,01/09/2023 10:00,2.00,NA,
6,A,13/45/2023 10:00,2.00,Spain,spain@x.org
C7,A,01/11/2023 10:00,3.00, Italy ,
8,C,01/12/2023 10:00,3.00,,
9, D ,01/13/2023 10:00,3.00,Peru,d@x.org
10,D,01/14/2023 10:00,3.00,Chile,
11,E,01/15/2023 10:00,3.00,Fiji,e@x.org
12,E,01/16/2023 10:00,3.00,Tonga,
11,E,01/15/2023 10:00,3.00,Fiji,e@x.org
"""


@pytest.mark.parametrize("form", ["csv", "parquet", "folder", "parquet-folder"])
def test_fast026_contact_columns_keep_the_last_kept_value_in_file_order(tmp_path, form):
    path = tmp_path / "contacts.csv"
    path.write_text(CONTACTS)
    if form == "parquet":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        path = tmp_path / "contacts.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    elif form == "parquet-folder":
        # Parquet lines are numbered by file, then by line in the file: A's Italy is line 0
        # of the second file, after France (line 2 of the first).
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        path = tmp_path / "lake"
        path.mkdir()
        for name, part in (("a", frame.iloc[:7]), ("b", frame.iloc[7:])):
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                           path / f"{name}.parquet")
    elif form == "folder":
        # Read in the order of the files' names: the second file's lines come last. Other
        # customers' lines make the folder larger than the sample the fast path reads.
        lines = CONTACTS.splitlines(keepends=True)
        filler = "".join(f"{100 + i},Z{i % 50},01/20/2023 10:00,1.00,Peru,\n"
                         for i in range(8000))
        (tmp_path / "contacts.csv").write_text("".join(lines[:8]) + filler
                                               + "".join(lines[8:]))
        path = tmp_path / "parts"
        path.mkdir()
        (path / "part-0.csv").write_text("".join(lines[:8]) + filler)
        (path / "part-1.csv").write_text(lines[0] + "".join(lines[8:]))
    if form == "folder":
        fast = prepare_fast(path, PrepareOptions(limits=LENIENT))
        _same_data(fast, prepare_file(tmp_path / "contacts.csv",
                                      PrepareOptions(limits=LENIENT)))
    elif form == "parquet-folder":
        fast = prepare_fast(path, PrepareOptions(limits=LENIENT))
        assert fast is not None
        _same_data(fast, prepare_path(path, PrepareOptions(limits=LENIENT), min_bytes=1 << 40))
    else:
        fast, general = _both(path)
        _assert_same(fast, general)
    rows = fast.customers.set_index("customer_id")
    # E's last line is its first again: Fiji.
    named = ["A", "B", "D", "E"]
    assert rows.loc[named, "country"].to_dict() == {
        "A": "Italy", "B": "Sweden", "D": "Chile", "E": "Fiji"}
    assert rows.loc[named, "email"].to_dict() == {
        "A": "a2@x.org", "B": "b@x.org", "D": "d@x.org", "E": "e@x.org"}
    assert pd.isna(rows.loc["C", "country"]) and pd.isna(rows.loc["C", "email"])
    counts = {r.rule: r.count for r in fast.report.rules}
    assert counts["duplicates"] == 1 and counts["bad_order_date"] == 1


def test_fast027_a_contact_value_alone_makes_a_line_distinct(tmp_path):
    # Two lines equal but for the country are not duplicates (the general path compares
    # whole lines).
    path = tmp_path / "near.csv"
    path.write_text("invoice,customer,date,amount,country\n"
                    "1,A,01/05/2023 10:00,10.00,Norway\n1,A,01/05/2023 10:00,10.00,Denmark\n"
                    "2,A,01/06/2023 10:00,10.00,Norway\n2,A,01/06/2023 10:00,10.00,Norway\n")
    fast, general = _both(path)
    _assert_same(fast, general)
    assert {r.rule: r.count for r in fast.report.rules}["duplicates"] == 1
    assert fast.customers.loc[0, "country"] == "Norway"


def test_fast005_windows_1252_file_equals_the_general_path(shared_data, tmp_path, monkeypatch):
    # sales_data_sample has Windows-1252 letters (bytes 0x80-0x9F: "Berguvsv\u201egen") that
    # DuckDB's Latin-1 would misread: DuckDB reads a UTF-8 copy, removed afterwards.
    import tempfile

    from dashapp import fastpath

    made = []
    copies = fastpath._utf8_copies

    def watched(files, codec):
        made.extend(copies(files, codec))
        return tuple(made)

    monkeypatch.setattr(fastpath, "_utf8_copies", watched)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = shared_data / "sales_data_sample" / "sales_data_sample.csv"
    fast, general = _both(path)
    _assert_same(fast, general)
    assert fast.ingested.encoding == "cp1252" and len(fast.customers) == 92
    assert len(made) == 1 and made[0].parent == tmp_path and not made[0].exists()


# Windows-1252 letters in an id, in an order id's cancellation, in a contact column (where
# 0x85 is an ellipsis, not the whitespace U+0085 Latin-1 would make of it) and elsewhere.
WINDOWS = ("order,customer,date,amount,country,note\n"
           "1,\x80uro GmbH,01/05/2023 10:00,10.00,\x85,\x93quoted\x94\n"
           "2,\x80uro GmbH,01/06/2023 10:00,5.00,\x8aerbia,\n"
           "3,M\x9fller,01/07/2023 10:00,4.00,France,\x96\n"
           "C4,M\x9fller,01/08/2023 10:00,4.00,France,\n"
           "5,\x85,01/09/2023 10:00,4.00,\xa0,\n"
           "5,\x85,01/09/2023 10:00,4.00,\xa0,\n").encode("latin-1")


def test_fast029_windows_1252_letters_read_as_the_general_path_reads_them(tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes(WINDOWS)
    fast, general = _both(path)
    _assert_same(fast, general)
    rows = fast.customers.set_index("customer_id")
    assert set(rows.index) == {"M\u0178ller", "\u20acuro GmbH", "\u2026"}
    assert rows.loc["\u20acuro GmbH", "country"] == "\u0160erbia"
    assert rows.loc["\u2026", "frequency"] == 1 and pd.isna(rows.loc["\u2026", "country"])
    assert {r.rule: r.count for r in fast.report.rules}["duplicates"] == 1
    # A byte Windows-1252 leaves undefined (0x81) makes the whole file Latin-1, which DuckDB
    # reads itself, U+0085 and all.
    latin = tmp_path / "latin.csv"
    latin.write_bytes(WINDOWS.replace(b"France", b"Fr\x81nce"))
    fast, general = _both(latin)
    _assert_same(fast, general)
    assert fast.ingested.encoding == "iso-8859-1"


@pytest.mark.parametrize("amounts", ["amount", "quantity;unit_price"])
def test_fast031_decimal_comma_files_equal_the_general_path(tmp_path, amounts):
    # A European export: semicolons, decimal commas, a return, a missing amount, whole
    # numbers without a comma; cancellations and duplicates as elsewhere.
    if amounts == "amount":
        body = ["1;A;15.01.2023 10:00;1,50", "1;A;15.01.2023 10:00;1,50",
                "2;A;20.01.2023 11:00;-0,75", "3;B;21.01.2023 12:00;3",
                "4;B;22.01.2023 12:00;N/A", "C5;B;23.01.2023 12:00;10,25",
                "6;C;13.02.2023 09:00;+2,5"]
    else:
        body = ["1;A;15.01.2023 10:00;2;1,50", "2;A;20.01.2023 11:00;-1;0,75",
                "3;B;21.01.2023 12:00;3;2", "4;C;13.02.2023 09:00;1,5;4,10"]
    path = tmp_path / "euro.csv"
    path.write_text(f"invoice;customer;date;{amounts}\n" + "\n".join(body) + "\n")
    fast, general = _both(path)
    _assert_same(fast, general)
    assert fast.ingested.decimal == ","
    rows = fast.customers.set_index("customer_id")
    if amounts == "amount":
        assert rows.loc["A", "monetary"] == 2.25 and rows.loc["C", "monetary"] == 2.5
    else:
        assert rows.loc["A", "monetary"] == 2.25 and rows.loc["C", "monetary"] == 6.15


def test_fast030_an_undefined_byte_the_sample_missed_falls_back(tmp_path):
    # The sample (the head and a few spread blocks) reads Windows-1252, but the general path
    # decodes the whole file, finds 0x81 past the head and reads Latin-1: its report says so,
    # so the fast path leaves the file to it.
    from dashapp import fastpath

    rows = [f"{i},\x80{i % 50},01/{1 + i % 28:02d}/2023 10:00,1.50,\n" for i in range(30_000)]
    head = fastpath._HEAD_BYTES
    at = next(i for i in range(len(rows)) if sum(map(len, rows[:i])) > head + 200)
    rows[at] = rows[at].replace(",\n", ",\x81\n")
    path = tmp_path / "late.csv"
    path.write_bytes(("order,customer,date,amount,note\n" + "".join(rows)).encode("latin-1"))
    sample = fastpath._read_sample(fastpath._csv_sample((path,), path.stat().st_size),
                                   path.name, PrepareOptions(limits=LENIENT))
    assert sample.encoding == "cp1252"
    assert prepare_fast(path, PrepareOptions(limits=LENIENT)) is None
    general = prepare_path(path, PrepareOptions(limits=LENIENT), min_bytes=0)
    assert general.ingested.encoding == "iso-8859-1"


def test_fast006_latin1_without_windows_letters_is_read(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(EDGES.replace("first", "caf\xe9").encode("latin-1"))
    fast, general = _both(path)
    _assert_same(fast, general)
    assert fast.ingested.encoding == "cp1252"


def test_fast007_parquet_equals_the_general_path(tmp_path):
    table = pa.table({
        "order": pa.array([10, 10, 11, 12, 13, 14, 15], pa.int64()),
        "customer": ["x", "x", "y", None, "y", "z", "x"],
        "ordered_at": pa.array(pd.to_datetime([
            "2024-01-01 23:00", "2024-01-01 23:00", "2024-02-01 01:00", "2024-02-02 00:00",
            "2024-03-01 00:00", "2024-03-05 12:00", None]), pa.timestamp("us")),
        "amount": [1.5, 1.5, 2.0, 3.0, -1.0, float("nan"), 4.0],
        "extra": ["", "", "a", "b", "c", "d", "e"],
    })
    path = tmp_path / "log.parquet"
    pq.write_table(table, path)
    fast, general = _both(path)
    _assert_same(fast, general)
    assert {r.rule: r.count for r in fast.report.rules}["duplicates"] == 1


def test_fast008_generated_log_equals_the_general_path(tmp_path):
    from benchmarks.generate import ensure

    dataset = ensure(20_000, tmp_path)
    for path in (dataset.csv, dataset.parquet):
        fast, general = _both(path)
        _assert_same(fast, general)


@pytest.mark.parametrize("text, why", [
    ("id;customer;date;amount\n1;A;2024-01-01;1,50\n2;A;2024-01-02;1.234,50\n",
     "grouped decimal comma"),
    ("id;customer;date;amount\n1;A;2024-01-01;1,50\n2;A;2024-01-02;2.5\n",
     "decimal point in a decimal-comma file"),
    ("invoice,customer,date,amount\n1,A,2024-01-01,$1.50\n2,A,2024-01-02,$2.00\n"
     "3,A,2024-01-03,$3.00\n", "currency"),
    ("customer,age,income\nA,30,100\nB,40,200\nC,50,300\n", "customer table"),
    ("invoice,customer,date,amount\n1,A,2024-01-01,1_000\n2,A,2024-01-02,1\n", "1_000"),
])
def test_fast009_what_it_cannot_read_exactly_falls_back(tmp_path, text, why):
    path = tmp_path / "f.csv"
    path.write_text(text)
    options = PrepareOptions(limits=LENIENT)
    assert prepare_fast(path, options) is None, why
    general = prepare_file(path, options)
    pd.testing.assert_frame_equal(prepare_path(path, options, min_bytes=0).customers,
                                  general.customers)


@pytest.mark.parametrize("text", [
    "invoice,customer,date,amount\n1,A,2024-01-01,inf\n2,A,2024-01-02,1\n",
    "invoice,customer,date,amount,qty\n1,A,2024-01-01,2,1\n2,A,2024-01-02,1,-inf\n",
    "invoice,customer,date,qty,price\n1,A,2024-01-01,2,1\n2,A,2024-01-02,inf,\n",
])
def test_fast013_infinite_values_fall_back_to_the_general_error(tmp_path, text):
    path = tmp_path / "inf.csv"
    path.write_text(text)
    assert prepare_fast(path, PrepareOptions()) is None
    with pytest.raises(NonFiniteError):
        prepare_path(path, min_bytes=0)


def test_fast010_drop_duplicates_falls_back(edges):
    options = PrepareOptions(cleaning=CleaningOptions(drop_duplicates=True), limits=LENIENT)
    assert prepare_fast(edges, options) is None
    assert prepare_path(edges, options, min_bytes=0).report.rows_kept == 7


def test_fast011_caps_apply(edges):
    with pytest.raises(TooLargeError):
        prepare_fast(edges, PrepareOptions(limits=Limits(max_bytes=100)))
    with pytest.raises(TooLargeError):
        prepare_fast(edges, PrepareOptions(limits=Limits(max_rows=5, max_bad_share=0.5)))


def test_fast012_dayfirst_and_reference_date(tmp_path):
    path = tmp_path / "dmy.csv"
    path.write_text("invoice,customer,date,amount\n" + "".join(
        f"{i},C{i % 7},{d:02d}/{m:02d}/2023,{i}.25\n"
        for i, (d, m) in enumerate((d, m) for m in range(1, 13) for d in (5, 17, 28))))
    fast, general = _both(path, reference_date="2024-02-01")
    _assert_same(fast, general)
    assert fast.ingested.dayfirst and fast.reference_date == pd.Timestamp("2024-02-01")


def test_fast014_cli_writes_the_same_bytes_as_pandas(tmp_path):
    from dashapp.cli import write_csv

    n = 12_000
    table = pd.DataFrame({
        "customer_id": pd.Series([f"C{i:06d}" for i in range(n)], dtype="str"),
        "recency": range(n),
        "monetary": [(-1) ** i * i / 7 for i in range(n)],
        "persona": pd.Series(["a, \"quoted\" one", None, "x\ny", " sp "] * (n // 4),
                             dtype="str"),
    })
    table.loc[1, "monetary"] = 1e17
    table.loc[2, "monetary"] = float("nan")
    table.loc[3, "monetary"] = -0.0
    write_csv(table, tmp_path / "ours.csv")
    table.to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


@pytest.mark.parametrize("name, encode", [
    ("bom_crlf.csv", lambda text: b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()),
    ("tabs.tsv", lambda text: text.replace(",", "\t").encode()),
])
def test_fast015_bom_crlf_and_tabs_equal_the_general_path(tmp_path, name, encode):
    path = tmp_path / name
    path.write_bytes(encode(EDGES))
    fast, general = _both(path)
    _assert_same(fast, general)


def test_fast016_prepare_path_and_the_cli_take_the_fast_path_past_the_threshold(
    edges, monkeypatch
):
    from dashapp import cli, fastpath

    options = PrepareOptions(limits=LENIENT)
    assert len(prepare_path(edges, options).ingested.table) == 14
    assert len(prepare_path(edges, options, min_bytes=0).ingested.table) == 0
    monkeypatch.setattr(fastpath, "FAST_MIN_BYTES", 0)
    args = cli._parser().parse_args(["rfm", str(edges)])
    monkeypatch.setattr("dashapp.pipeline.Settings.from_env",
                        classmethod(lambda cls, env=None: cls(limits=LENIENT,
                                                              source_limits=LENIENT)))
    prepared = cli._prepare(args)
    assert len(prepared.ingested.table) == 0
    assert prepared.report == prepare_file(edges, options).report


def test_fast017_the_stripped_characters_are_pythons():
    from dashapp.fastpath import _WHITESPACE

    assert set(_WHITESPACE) == {c for c in map(chr, range(0x110000)) if c.isspace()}
    assert pd.Series(["x" + _WHITESPACE], dtype="string").str.strip()[0] == "x"


# --------------------------------------------------------------------------- folders


def _split_lines(data: bytes, parts: int) -> list[bytes]:
    """A CSV's bytes cut into ``parts`` files, each with the header line."""
    header, _, body = data.partition(b"\n")
    lines = body.splitlines(keepends=True)
    step = -(-len(lines) // parts)
    return [header + b"\n" + b"".join(lines[i:i + step]) for i in range(0, len(lines), step)]


def _same_data(a, b) -> None:
    """Same customers and cleaning report; the content hash names the source, so it differs."""
    pd.testing.assert_frame_equal(a.customers, b.customers)
    assert a.report == b.report
    assert a.cuts == b.cuts and a.reference_date == b.reference_date
    assert a.ingested.mapping == b.ingested.mapping
    assert a.ingested.bad_values == b.ingested.bad_values


def test_fast018_csv_folder_equals_the_whole_file(shared_data, tmp_path):
    whole = shared_data / "online_retail" / "online_retail_sample_20000.csv"
    folder = tmp_path / "exports"
    (folder / "2011").mkdir(parents=True)
    parts = _split_lines(whole.read_bytes(), 3)
    (folder / "2010-12.csv").write_bytes(parts[0])
    (folder / "2011" / "a.csv").write_bytes(parts[1])
    (folder / "2011" / "b.csv").write_bytes(parts[2])
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".notes.csv").write_bytes(b"not,data\n")
    options = PrepareOptions(limits=LENIENT)
    fast = prepare_fast(folder, options)
    assert fast is not None
    general = prepare_file(whole, options)
    _same_data(fast, general)
    assert fast.report.rows_read == general.report.rows_read == 20_000
    # Each customer's country is the last in the order the files are read.
    assert "country" in fast.customers.columns


def test_fast019_parquet_folder_equals_one_file(tmp_path):
    from benchmarks.generate import ensure

    dataset = ensure(20_000, tmp_path)
    table = pq.read_table(dataset.parquet)
    folder = tmp_path / "lake"
    for i, start in enumerate(range(0, table.num_rows, 7_000)):
        part = folder / f"part={i}"
        part.mkdir(parents=True)
        pq.write_table(table.slice(start, 7_000), part / "data.parquet")
    options = PrepareOptions(limits=LENIENT)
    fast = prepare_fast(folder, options)
    assert fast is not None
    single = prepare_file(dataset.parquet, options)
    _same_data(fast, single)
    _same_data(prepare_path(folder, options, min_bytes=1 << 40), single)


def test_fast020_folders_that_are_not_one_table_are_refused(tmp_path):
    from dashapp.errors import IngestError

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IngestError, match="holds no CSV"):
        prepare_path(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.csv").write_text(EDGES)
    pq.write_table(pa.table({"x": [1]}), mixed / "b.parquet")
    with pytest.raises(IngestError, match="mixes CSV and Parquet"):
        prepare_path(mixed)
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.csv").write_text(EDGES)
    (other / "b.csv").write_text(EDGES.replace("invoice,", "order,", 1))
    assert prepare_fast(other, PrepareOptions(limits=LENIENT)) is None
    with pytest.raises(IngestError, match="'b.csv' has other columns than 'a.csv'"):
        prepare_path(other, PrepareOptions(limits=LENIENT), min_bytes=0)


def test_fast021_orders_mixing_good_and_bad_lines_are_split_by_state(tmp_path, monkeypatch):
    # Order 2001 holds a purchase, a return line and a line without an amount; 2002 a
    # purchase and an impossible date. Such orders are grouped again line state by line
    # state, and the result is the general path's.
    import dashapp.fastpath as fastpath

    text = ("invoice,customer,date,amount\n"
            "2001,A1,01/05/2024 10:00,10.00\n2001,A1,01/05/2024 10:00,-4.00\n"
            "2001,A1,01/05/2024 10:00,\n2002,B2,02/30/2024 10:00,3.00\n"
            "2002,B2,02/01/2024 10:00,3.00\n2003,B2,02/02/2024 10:00,5.00\n"
            "2004,C3,03/01/2024 09:00,7.50\n2004,C3,03/01/2024 09:00,7.50\n")
    text += "".join(f"{3000 + i},D{i % 4},04/{i + 1:02d}/2024 12:00,{i + 1}.25\n"
                    for i in range(20))
    path = tmp_path / "mixed.csv"
    path.write_text(text)
    calls = []
    real = fastpath._scan_once

    def spy(con, plan, merge, split=False):
        calls.append(split)
        return real(con, plan, merge, split)

    monkeypatch.setattr(fastpath, "_scan_once", spy)
    fast, general = _both(path)
    _assert_same(fast, general)
    assert calls[-2:] == [False, True]
    customers = fast.customers.set_index("customer_id")
    assert customers.loc["A1", "monetary"] == 6.0 and customers.loc["A1", "frequency"] == 1
    assert customers.loc["B2", "frequency"] == 2
    # A clean log needs one query only.
    calls.clear()
    clean = tmp_path / "clean.csv"
    clean.write_text("invoice,customer,date,amount\n" + text.split("\n", 9)[-1])
    _assert_same(*_both(clean))
    assert calls == [False]


def test_fast022_in_memory_fallback_keeps_the_upload_caps(shared_data, edges):
    # Past the upload cap a file the DuckDB path reads is read; one that needs the general
    # path (grouped decimal-comma numbers) is refused with the reason, not read into memory.
    small = Limits(max_bytes=100, max_bad_share=0.5)
    options = PrepareOptions(limits=LENIENT, fallback_limits=small)
    read = prepare_path(edges, options, min_bytes=0)
    assert read.report.rows_read == 14
    legacy = edges.with_name("commas.csv")
    legacy.write_text("id;customer;date;amount\n" + "".join(
        f"{i};C{i % 3};2024-01-{1 + i:02d};{i}.000,50\n" for i in range(1, 13)))
    with pytest.raises(TooLargeError, match="does not read exactly.*PERSONA_MAX_UPLOAD_MB"):
        prepare_path(legacy, options, min_bytes=0)
    # Under the fallback cap the general path reads it as before.
    roomy = PrepareOptions(fallback_limits=Limits(max_bytes=1 << 30))
    assert len(prepare_path(legacy, roomy, min_bytes=0).customers) == 3


def _duplicated_log(seed: int = 0) -> pd.DataFrame:
    """Orders of 1 to 40 lines with exact duplicates placed where each check of the scan
    decides: orders of two lines, large orders whose hash buckets collide, triplicates,
    and near-duplicates that differ in one column only (not duplicates)."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.zipf(1.6, 3_000), 40)
    order = np.repeat(np.arange(3_000) + 50_000, sizes)
    customer = np.repeat(rng.integers(0, 700, 3_000), sizes)
    frame = pd.DataFrame({
        "order": order, "customer": [f"K{c:04d}" for c in customer],
        "ordered_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(
            np.repeat(rng.integers(0, 500, 3_000), sizes), unit="D"),
        "amount": np.round(rng.gamma(2.0, 20.0, len(order)), 2),
        "extra": rng.choice(["a", "b", "c"], len(order)),
    })
    pairs = frame.groupby("order").filter(lambda g: len(g) == 2).drop_duplicates("order")
    big = frame.groupby("order").filter(lambda g: len(g) >= 20).drop_duplicates("order")
    copies = [pairs.iloc[:15], big.iloc[:10], big.iloc[:4], big.iloc[:4]]  # triplicates
    near = big.iloc[10:16].assign(extra="z")
    nearer = big.iloc[10:16].assign(amount=big["amount"].iloc[10:16] + 0.01)
    out = pd.concat([frame, *copies, near, nearer], ignore_index=True)
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


def test_fast023_parquet_duplicates_are_counted_exactly(tmp_path):
    frame = _duplicated_log()
    path = tmp_path / "dups.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    fast, general = _both(path)
    _assert_same(fast, general)
    # Against pandas' own count, and the duplicates are where they were put.
    expected = int(frame.duplicated().sum())
    assert expected >= 15 + 10 + 4 + 4  # and a few the draw made itself
    assert {r.rule: r.count for r in fast.report.rules}["duplicates"] == expected
    # The same lines as CSV give the same counts (the CSV scan checks duplicates its own way).
    csv = tmp_path / "dups.csv"
    frame.to_csv(csv, index=False)
    fast_csv, general_csv = _both(csv)
    _assert_same(fast_csv, general_csv)
    assert {r.rule: r.count for r in fast_csv.report.rules}["duplicates"] == expected


@pytest.mark.parametrize("nan_in", ["amount", "other", "none"])
def test_fast024_parquet_nan_anywhere_is_missing_as_on_the_general_path(tmp_path, nan_in):
    # Parquet leaves NaN out of a float column's min/max, and the scan runs with DuckDB's
    # statistics unless a NaN is found first. "amount" is the case those statistics break
    # (a check that misses the NaN fails it); "other" and "none" check that a NaN and an
    # empty value in another column are equal, so the two lines of order 11 repeat.
    nan = float("nan")
    table = pa.table({
        "order": pa.array([10, 11, 11, 12], pa.int64()),
        "customer": ["x", "y", "y", "z"],
        "ordered_at": pa.array(pd.to_datetime(
            ["2024-01-01", "2024-02-01", "2024-02-01", "2024-03-01"]), pa.timestamp("us")),
        "amount": [nan if nan_in == "amount" else 1.0, 2.0, 2.0, 3.0],
        "discount": pa.array([0.5, nan if nan_in == "other" else None, None, 0.25],
                             pa.float64()),
    })
    path = tmp_path / "log.parquet"
    pq.write_table(table, path)
    fast, general = _both(path)
    _assert_same(fast, general)
    counts = {r.rule: r.count for r in fast.report.rules}
    assert counts["duplicates"] == 1
    assert counts["bad_amount"] == (1 if nan_in == "amount" else 0)


def test_fast028_rare_late_repeats_type_only_their_customers_lines(tmp_path, monkeypatch):
    # The ordered read looks for the report's examples in batches. Once every other rule has
    # its examples, a batch keeps only the lines of the customers the scan found repeated
    # before it is typed: the examples are the general path's, and the other lines are not
    # typed (which on a large file with a few late repeats was a typed read of all of it).
    from dashapp import fastpath, ingest

    rng = np.random.default_rng(7)
    n = 3000
    lines = [f"{i},K{i % 400},01/{1 + i % 28:02d}/2023 10:00,{rng.integers(1, 999) / 10}"
             for i in range(n)]
    lines[5] = "5,NA,01/06/2023 10:00,3.0"  # a missing id: that rule is done early
    lines[9] = "9,K9,01/10/2023 10:00,-2.0"  # a return, early too
    lines[2000] = "2000, K17 ,01/17/2023 10:00,4.5"  # the repeated customer, spaces around
    lines.append(lines[2900])  # the one repeat, at the very end (customer K100)
    path = tmp_path / "late.csv"
    path.write_text("order,customer,date,amount\n" + "\n".join(lines) + "\n")
    monkeypatch.setattr(fastpath, "_DETAIL_BATCH", 100)
    typed, reading = [], []
    parse_dates, details = ingest._parse_dates, fastpath._details

    def counting(series, guess):
        if reading:
            typed.append(len(series))
        return parse_dates(series, guess)

    def ordered_read(*args):
        reading.append(True)
        try:
            return details(*args)
        finally:
            reading.clear()

    monkeypatch.setattr(ingest, "_parse_dates", counting)
    monkeypatch.setattr(fastpath, "_details", ordered_read)
    fast = prepare_fast(path, PrepareOptions(limits=LENIENT))
    _assert_same(fast, prepare_file(path, PrepareOptions(limits=LENIENT)))
    rules = {r.rule: r for r in fast.report.rules}
    assert rules["duplicates"].count == 1
    assert [e["row"] for e in rules["duplicates"].examples] == [str(n + 2)]
    # The ordered read typed its first batch whole (a few dozen lines: the missing id and
    # the return are there), then only customer K100's lines, one in 400: not the 3,000.
    assert typed[0] > 20 and max(typed[1:]) <= 2, typed
    assert sum(typed) < typed[0] + 10


# Found by differential fuzzing against the general path (2026-12-03), each reduced to a
# few lines.


@pytest.mark.parametrize("form", ["csv", "parquet-text", "parquet-int"])
def test_fast032_a_line_without_an_order_id_is_a_purchase_but_no_order(tmp_path, form):
    # The general path keeps the line (its amount and date count) and counts distinct order
    # ids, which leave the missing one out. The fast path had subtracted it as a return
    # (NOT NULL is NULL) and, with integer ids, counted the missing id as an order.
    frame = pd.DataFrame({"invoice": ["1", None, "2", "3", "4"],
                          "customer": ["A", "A", "B", "B", "C"],
                          "date": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04",
                                   "2024-01-05"],
                          "amount": [10.0, 5.0, 7.0, 8.0, 9.0]})
    if form == "csv":
        path = tmp_path / "log.csv"
        frame.to_csv(path, index=False)
    else:
        if form == "parquet-int":
            frame["invoice"] = frame["invoice"].astype("Int64")
        path = tmp_path / "log.parquet"
        frame.to_parquet(path, index=False)
    fast, general = _both(path)
    _assert_same(fast, general)
    a = fast.customers.set_index("customer_id").loc["A"]
    assert (a["monetary"], a["frequency"]) == (15.0, 1)
    assert a["last_order"] == pd.Timestamp("2024-01-02")


@pytest.mark.parametrize("order", [True, False])
def test_fast033_an_order_counts_once_when_an_unused_number_column_splits_it(tmp_path, order):
    # The amount is given; the price column (a unit_price role the amount does not need) is
    # empty on one line of the order, so the order's lines fall in two groups by state.
    head = "invoice,customer,date,amount,price\n" if order else "customer,date,amount,price\n"
    lines = ["1,A,2024-01-01 10:00,10.0,2.5", "1,A,2024-01-01 10:00,5.0,",
             "2,B,2024-01-02 10:00,7.0,1.0"]
    if not order:
        lines = [line.split(",", 1)[1] for line in lines]
    path = tmp_path / "log.csv"
    path.write_text(head + "\n".join(lines) + "\n")
    fast, general = _both(path, mapping={"unit_price": "price"})
    _assert_same(fast, general)
    assert fast.customers.set_index("customer_id").loc["A", "frequency"] == 1


def test_fast034_nan_and_signs_duckdb_reads_and_the_general_path_does_not(tmp_path):
    # '-nan' is unreadable to the general path ('nan' is a missing token); DuckDB's reader
    # takes it for NaN, which the fast path had counted as missing. Such a file is read
    # again as text and then left to the general path, which lists the value.
    head = "invoice,customer,date,amount\n1,A,2024-01-01,2.5\n"
    good = "".join(f"{i},B{i % 5},2024-01-{i:02d},{i}.25\n" for i in range(3, 25))
    for value in ("-nan", "+nan"):
        path = tmp_path / "log.csv"
        path.write_text(head + f"2,A,2024-01-02,{value}\n" + good)
        assert prepare_fast(path, PrepareOptions(limits=LENIENT)) is None, value
        general = prepare_file(path, PrepareOptions(limits=LENIENT))
        assert {r.rule: r.count for r in general.report.rules}["bad_amount"] == 1, value
    # 'nan' alone is missing on both paths.
    path.write_text(head + "2,A,2024-01-02,nan\n" + good)
    fast, general = _both(path)
    _assert_same(fast, general)
    assert {r.rule: r.count for r in fast.report.rules}["bad_amount"] == 1


def test_fast035_parquet_names_and_stored_uploads_read_as_on_the_general_path(tmp_path):
    from dashapp import datasets

    # ' customer ' is 'customer' on the general path: the fast path leaves such a file to it.
    table = pa.table({"invoice": [1, 2], " customer ": ["A", "B"],
                      "date": pa.array(pd.to_datetime(["2024-01-01", "2024-01-02"]),
                                       pa.timestamp("us")), "amount": [1.0, 2.0]})
    spaced = tmp_path / "spaced.parquet"
    pq.write_table(table, spaced)
    assert prepare_fast(spaced, PrepareOptions(limits=LENIENT)) is None
    assert prepare_file(spaced).ingested.mapping["customer_id"] == "customer"
    # An upload the app stored as Parquet keeps its original's reading (a CSV, its
    # delimiter and notices), on both paths.
    data, _ = datasets.to_parquet(EDGES.encode(), "edges.csv", LENIENT)
    stored = tmp_path / "stored.parquet"
    stored.write_bytes(data)
    fast, general = _both(stored)
    _assert_same(fast, general)
    assert fast.ingested.file_format == "csv" and fast.ingested.delimiter == ","


def test_fast036_parquet_categoricals_and_decimal_money_equal_the_general_path(tmp_path):
    # pandas writes categoricals as dictionaries, databases and Spark write money as
    # decimal128: both sent a Parquet file to the general path whatever its size.
    from decimal import Decimal

    rng = np.random.default_rng(3)
    n = 3000
    customers = [f"K{c}" for c in rng.integers(0, 300, n)]
    amounts = [Decimal(f"{v:.2f}") for v in rng.gamma(2, 20, n)]
    amounts[5], amounts[9] = Decimal("-3.10"), None
    table = pa.table({
        "invoice": pa.array([f"INV{i // 3}" for i in range(n)]).dictionary_encode(),
        "customer": pa.array(customers).dictionary_encode(),
        "date": pa.array(pd.Timestamp("2024-01-01")
                         + pd.to_timedelta(rng.integers(0, 300, n), "D"), pa.timestamp("us")),
        "amount": pa.array(amounts, pa.decimal128(12, 2)),
        "country": pa.array(rng.choice(["UK", "France", None], n)).dictionary_encode(),
        "weight": pa.array([Decimal(f"{v:.4f}") for v in rng.random(n)], pa.decimal128(10, 4)),
    })
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path)
    fast, general = _both(path)
    _assert_same(fast, general)
    rules = {r.rule: r.count for r in fast.report.rules}
    assert rules["returns"] == 1 and rules["bad_amount"] == 1
    one = fast.customers.set_index("customer_id").loc[customers[0], "monetary"]
    assert one == round(sum(float(a) for c, a in zip(customers, amounts)
                            if c == customers[0] and a is not None), 2)


# --------------------------------------------------------------------------- pandas exports


def _retail_frame(shared_data) -> pd.DataFrame:
    # As pandas reads it: CustomerID has gaps (NA), so it is float64 (17850.0).
    frame = pd.read_csv(shared_data / "online_retail" / "online_retail_sample_20000.csv")
    assert frame["CustomerID"].dtype == "float64" and frame["CustomerID"].isna().any()
    return frame


def test_fast037_float_customer_ids_from_pandas_equal_the_general_path(shared_data, tmp_path):
    # pandas writes an id column with gaps as double; such a Parquet file went to the
    # general path whatever its size.
    frame = _retail_frame(shared_data)
    path = tmp_path / "retail.parquet"
    frame.to_parquet(path, index=False)
    fast, general = _both(path)
    _assert_same(fast, general)
    # 17850.0 is customer "17850", as in the CSV; a missing id drops the line.
    from_csv = prepare_file(shared_data / "online_retail" / "online_retail_sample_20000.csv",
                            PrepareOptions(limits=LENIENT))
    pd.testing.assert_frame_equal(fast.customers[["customer_id", "frequency", "monetary"]],
                                  from_csv.customers[["customer_id", "frequency", "monetary"]])
    assert {r.rule: r.count for r in fast.report.rules}["missing_customer_id"] == int(
        frame["CustomerID"].isna().sum())
    # NaN (not null) is missing too; an id that is no whole number is left to the general
    # path, which keeps pandas' spelling of it.
    ids = frame["CustomerID"].to_numpy(copy=True)
    ids[np.flatnonzero(np.isnan(ids))[:5]] = np.nan
    table = pa.Table.from_pandas(frame.assign(CustomerID=ids), preserve_index=False)
    table = table.set_column(table.schema.get_field_index("CustomerID"), "CustomerID",
                             pa.array(ids, pa.float64(), from_pandas=False))
    pq.write_table(table, path)
    fast, general = _both(path)
    _assert_same(fast, general)
    ids[0] = 12.5
    frame.assign(CustomerID=ids).to_parquet(path, index=False)
    assert prepare_fast(path, PrepareOptions(limits=LENIENT)) is None
    general = prepare_file(path, PrepareOptions(limits=LENIENT))
    assert "12.5" in set(general.customers["customer_id"])


def _monthly(frame: pd.DataFrame, folder: Path, drift: dict[int, callable]) -> list[Path]:
    """The log as one Parquet file per month (hive-style folders), as a daily job writes it;
    ``drift[i]`` changes month i's frame before it is written."""
    month = pd.to_datetime(frame["InvoiceDate"]).dt.strftime("%Y-%m")
    written = []
    for i, (name, part) in enumerate(frame.groupby(month, sort=True)):
        part = drift.get(i, lambda p: p)(part.copy())
        (folder / f"month={name}").mkdir(parents=True)
        written.append(folder / f"month={name}" / "part.parquet")
        part.to_parquet(written[-1], index=False)
    return written


def test_fast038_a_parquet_folder_whose_column_types_drift_between_files(shared_data, tmp_path):
    # One month's Quantity has an empty value (pandas writes the column as double), another
    # month has no Description at all (type null). Both paths read the folder with the types
    # every file fits; it used to be refused ("do not share one set of columns").
    frame = _retail_frame(shared_data)

    def gap(part):
        part.loc[part.index[part["CustomerID"].notna()][3], "Quantity"] = np.nan
        return part

    def blank(part):
        part["Description"] = None
        return part

    folder = tmp_path / "lake"
    written = _monthly(frame, folder, {2: gap, 5: blank})
    schemas = [pq.read_schema(p) for p in written]
    assert {str(s.field("Quantity").type) for s in schemas} == {"int64", "double"}
    assert {str(s.field("Description").type) for s in schemas} >= {"null"}
    options = PrepareOptions(limits=LENIENT)
    fast = prepare_fast(folder, options)
    assert fast is not None
    general = prepare_path(folder, options, min_bytes=1 << 40)
    _same_data(fast, general)
    # Against the CSV (an independent reading): one line fewer has an amount, and the rest
    # of each customer's orders and dates are the same.
    from_csv = prepare_file(shared_data / "online_retail" / "online_retail_sample_20000.csv",
                            options)
    rules = {r.rule: r.count for r in fast.report.rules}
    assert rules["bad_amount"] == {r.rule: r.count for r in from_csv.report.rules}[
        "bad_amount"] + 1
    merged = fast.customers.merge(from_csv.customers, on="customer_id", suffixes=("", "_csv"))
    assert len(merged) >= len(from_csv.customers) - 1
    assert (merged["recency"] - merged["recency_csv"]).abs().max() <= 1
    assert ((merged["frequency"] - merged["frequency_csv"]).abs() <= 1).all()


def test_fast039_folders_the_general_path_cannot_join_say_which_column(tmp_path):
    from dashapp.errors import IngestError

    folder = tmp_path / "lake"
    folder.mkdir()
    base = pd.DataFrame({"invoice": [1, 2], "customer": ["A", "B"],
                         "date": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                         "amount": [1.0, 2.0]})
    base.to_parquet(folder / "a.parquet", index=False)
    base.assign(customer=[7, 8]).to_parquet(folder / "b.parquet", index=False)
    assert prepare_fast(folder, PrepareOptions(limits=LENIENT)) is None
    with pytest.raises(IngestError, match="Column 'customer' holds text in 'a.parquet' "
                                          "but whole numbers in 'b.parquet'"):
        prepare_path(folder, PrepareOptions(limits=LENIENT), min_bytes=0)
    base[["customer", "invoice", "date", "amount"]].to_parquet(folder / "b.parquet",
                                                               index=False)
    with pytest.raises(IngestError, match="'b.parquet' has other columns than 'a.parquet'"):
        prepare_path(folder, PrepareOptions(limits=LENIENT), min_bytes=0)


def test_fast040_a_column_empty_in_the_sample_but_filled_later(tmp_path, monkeypatch):
    # The first file has no e-mail at all, the second has them: the general path detects the
    # e-mail on values spread over the whole column. The fast path's sample reads on into
    # the next files, and where the sample ends before any e-mail it leaves the folder to
    # the general path.
    from dashapp import fastpath

    folder = tmp_path / "lake"
    folder.mkdir()
    rng = np.random.default_rng(5)
    n = 4000
    frame = pd.DataFrame({
        "invoice": np.arange(n) // 2, "customer": [f"C{c}" for c in rng.integers(0, 200, n)],
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D"),
        "amount": rng.gamma(2, 10, n).round(2), "contact": pd.array([None] * n, "str"),
        "discount": np.nan})
    def write(part, path):
        # NaN itself, not the null pandas writes for it
        table = pa.Table.from_pandas(part, preserve_index=False)
        nan = pa.array(np.full(len(part), np.nan), from_pandas=False)
        pq.write_table(table.set_column(table.schema.get_field_index("discount"), "discount",
                                        nan), path)

    write(frame.iloc[: n // 2], folder / "a.parquet")
    later = frame.iloc[n // 2:].copy()
    later["contact"] = [f"{c.lower()}@example.org" for c in later["customer"]]
    write(later, folder / "b.parquet")
    options = PrepareOptions(limits=LENIENT)
    general = prepare_path(folder, options, min_bytes=1 << 40)
    assert general.ingested.mapping.get("email") == "contact"
    _same_data(prepare_fast(folder, options), general)
    monkeypatch.setattr(fastpath, "_PARQUET_SAMPLE_ROWS", n // 4)
    assert prepare_fast(folder, options) is None
    # Empty everywhere, it is no role on either path, and the fast path reads the folder (a
    # number column of NaN alone is empty too).
    write(frame.iloc[n // 2:], folder / "b.parquet")
    _same_data(prepare_fast(folder, options), prepare_path(folder, options, min_bytes=1 << 40))


def test_fast041_a_column_named_like_duckdbs_line_numbers(tmp_path):
    # A file's own 'file_row_number' column hides DuckDB's: the lines are then numbered as a
    # CSV's are (a table of the read in file order), and each customer's country is still
    # its last line's.
    frame = pd.read_csv(io.StringIO(CONTACTS), dtype=str, keep_default_na=False)
    frame["file_row_number"] = np.arange(len(frame))[::-1]
    path = tmp_path / "numbered.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    fast, general = _both(path)
    _assert_same(fast, general)
    assert fast.customers.set_index("customer_id").loc["A", "country"] == "Italy"


def test_fast042_csv_lines_are_numbered_in_file_order_by_a_parallel_read(tmp_path):
    # A contact column's "last value" needs each CSV line's place in the file. The table of
    # the read keeps it while the read runs in parallel: 4.6 MB in 64 KB buffers on four
    # threads. The same read without insertion order (the control) comes out of order,
    # so this file is really read in pieces.
    from dashapp import fastpath

    lines = 400_000
    customers = np.random.default_rng(0).integers(0, 1000, lines)
    pd.DataFrame({"x": np.arange(lines), "c": [f"C{c}" for c in customers]}).to_csv(
        tmp_path / "lines.csv", index=False)
    select = (f"SELECT x, c FROM read_csv('{tmp_path / 'lines.csv'}', header = true, "
              "buffer_size = 65536, columns = {'x': 'BIGINT', 'c': 'VARCHAR'})")

    def order(con) -> np.ndarray:
        con.execute("SET threads = 4")
        got = con.sql(f"SELECT x, rn FROM ({fastpath._ordered_lines(con, select)})").fetchnumpy()
        assert np.array_equal(np.sort(got["rn"]), np.arange(lines))
        return got["x"][np.argsort(got["rn"])]

    assert np.array_equal(order(fastpath._connect()), np.arange(lines))
    control = fastpath._connect()
    control.execute("SET preserve_insertion_order = false")
    assert not np.array_equal(order(control), np.arange(lines))
