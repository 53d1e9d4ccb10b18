"""CSV and Excel downloads: formula injection defused, values and accents kept, contact lists."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import openpyxl
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from dashapp.export import (
    CSV_MIME,
    DANGEROUS_PREFIXES,
    XLSX_MIME,
    contact_list,
    export_filename,
    neutralize,
    safe_sheet_name,
    to_csv_bytes,
    to_excel_bytes,
)

HOSTILE = {
    "=": "=1+1",
    "+": "+31 6 1234",
    "-": "-5",
    "@": "@SUM(A1)",
    "\t": "\t=cmd",
    "\r": "\r=cmd",
}


def _customers() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["12346", "9999", "C3", "2", "10", "7"],
        "recency": [-5.0, 12.0, np.nan, 3.5, 40.0, 1.0],
        "frequency": [1, 2, 3, 4, 5, 6],
        "name": ["Martín", "=HYPERLINK(\"http://x\",\"y\")", None, "Ann", "Bo", "Cy"],
        "email": ["m@x.se", "http://example.com", "c@x.se", "a@x.se", "b@x.se", "c@y.se"],
        "city": ["Berguvsvägen", "00123", "+46", "@home", "plain", "a=b"],
        "segment": [1, 0, 1, 2, 0, 1],
        "persona": ["Loyal", "New", "Loyal", "Lapsed", "New", "Loyal"],
    })


def _sheet(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data)).active


def _header(ws) -> list:
    return [cell.value for cell in ws[1]]


def _column(ws, name: str) -> list:
    position = _header(ws).index(name)
    return [row[position] for row in ws.iter_rows(min_row=2)]


@pytest.mark.parametrize("prefix", DANGEROUS_PREFIXES)
def test_exp001_every_dangerous_prefix_gets_a_quote(prefix):
    frame = pd.DataFrame({"text": [HOSTILE[prefix], "safe"]})
    assert neutralize(frame)["text"].tolist() == ["'" + HOSTILE[prefix], "safe"]


def test_exp002_safe_text_numbers_and_missing_are_left_alone():
    frame = _customers()
    out = neutralize(frame)
    assert out["city"].tolist() == ["Berguvsvägen", "00123", "'+46", "'@home", "plain", "a=b"]
    assert out["name"].tolist()[:2] == ["Martín", "'=HYPERLINK(\"http://x\",\"y\")"]
    assert pd.isna(out.loc[2, "name"])
    assert out.loc[0, "recency"] == -5.0 and pd.isna(out.loc[2, "recency"])
    assert_frame_equal(out[["recency", "frequency", "segment"]],
                       frame[["recency", "frequency", "segment"]])
    assert out.dtypes.equals(frame.dtypes)


def test_exp003_text_like_minus_five_is_prefixed_but_the_number_is_not():
    frame = pd.DataFrame({"as_text": ["-5"], "as_number": [-5.0], "as_int": [-5]})
    out = neutralize(frame)
    assert out.loc[0, "as_text"] == "'-5"
    assert out.loc[0, "as_number"] == -5.0 and out.loc[0, "as_int"] == -5


def test_exp004_mixed_and_categorical_columns_only_touch_text():
    frame = pd.DataFrame({
        "mixed": pd.Series(["=x", -3, None, "ok"], dtype=object),
        "kind": pd.Categorical(["=a", "b", None, "b"]),
    })
    out = neutralize(frame)
    assert out["mixed"].tolist() == ["'=x", -3, None, "ok"]
    assert isinstance(out["kind"].dtype, pd.CategoricalDtype)
    assert out["kind"].tolist()[:2] == ["'=a", "b"] and pd.isna(out["kind"][2])


def test_exp005_header_is_neutralized_and_input_untouched():
    frame = pd.DataFrame({"=cmd|' /C calc'!A0": ["=1"], "@name": ["x"], "ok": ["y"]})
    before = frame.copy()
    out = neutralize(frame)
    assert list(out.columns) == ["'=cmd|' /C calc'!A0", "'@name", "ok"]
    assert_frame_equal(frame, before)


def test_exp006_csv_has_bom_crlf_no_index_and_empty_missing_values():
    data = to_csv_bytes(pd.DataFrame({"a": ["x", None], "b": [1.5, np.nan]}))
    assert data.startswith(b"\xef\xbb\xbf")
    assert data[3:] == b"a,b\r\nx,1.5\r\n,\r\n"


def test_exp007_csv_round_trip_keeps_values_and_accents():
    frame = _customers()
    back = pd.read_csv(io.BytesIO(to_csv_bytes(frame)), encoding="utf-8-sig", dtype=str)
    expected = frame.astype({c: "str" for c in ("recency", "frequency", "segment")})
    expected["name"] = ["Martín", "'=HYPERLINK(\"http://x\",\"y\")", None, "Ann", "Bo", "Cy"]
    expected["city"] = ["Berguvsvägen", "00123", "'+46", "'@home", "plain", "a=b"]
    expected.loc[2, "recency"] = np.nan
    assert back.loc[0, "name"] == "Martín" and back.loc[0, "city"] == "Berguvsvägen"
    assert_frame_equal(back, expected, check_dtype=False)


def test_exp008_csv_round_trip_of_tab_and_carriage_return():
    frame = pd.DataFrame({"text": [HOSTILE["\t"], HOSTILE["\r"], "-"]})
    back = pd.read_csv(io.BytesIO(to_csv_bytes(frame)), encoding="utf-8-sig")
    assert back["text"].tolist() == ["'\t=cmd", "'\r=cmd", "'-"]


def test_exp009_excel_strings_stay_strings():
    ws = _sheet(to_excel_bytes(_customers()))
    link, url, zeros = _column(ws, "name")[1], _column(ws, "email")[1], _column(ws, "city")[1]
    assert link.value == "=HYPERLINK(\"http://x\",\"y\")" and link.data_type == "s"
    assert url.value == "http://example.com" and url.hyperlink is None
    assert zeros.value == "00123" and zeros.data_type == "s"
    assert [c.value for c in _column(ws, "city")][2:4] == ["+46", "@home"]
    assert [c.value for c in _column(ws, "recency")] == [-5, 12, None, 3.5, 40, 1]


def test_exp010_excel_header_frozen_filtered_bold_and_sized():
    frame = _customers()
    ws = _sheet(to_excel_bytes(frame))
    assert _header(ws) == list(frame.columns)
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:H7"
    assert all(cell.font.bold for cell in ws[1])
    assert not any(cell.font.bold for cell in ws[2])
    widths = {letter: dim.width for letter, dim in ws.column_dimensions.items()}
    assert all(8 <= w <= 61 for w in widths.values()) and widths


def test_exp011_excel_hostile_header_is_plain_text():
    ws = _sheet(to_excel_bytes(pd.DataFrame({"=1+1": [1]})))
    assert ws["A1"].value == "=1+1" and ws["A1"].data_type == "s"


def test_exp012_excel_datetimes_are_dates():
    frame = pd.DataFrame({
        "day": pd.to_datetime(["2024-01-31", None]),
        "aware": pd.to_datetime(["2024-03-01", "2024-03-02"]).tz_localize("Europe/Paris"),
    })
    ws = _sheet(to_excel_bytes(frame))
    assert ws["A2"].value == dt.datetime(2024, 1, 31) and ws["A2"].is_date
    assert ws["A2"].number_format == "yyyy-mm-dd"
    assert ws["A3"].value is None
    assert ws["B2"].value == dt.datetime(2024, 3, 1) and ws["B2"].is_date


def test_exp013_excel_times_of_day_are_shown():
    frame = pd.DataFrame({"at": pd.to_datetime(["2024-01-31 13:45:00"])})
    cell = _sheet(to_excel_bytes(frame))["A2"]
    assert cell.value == dt.datetime(2024, 1, 31, 13, 45) and cell.number_format.endswith("ss")


def test_exp014_excel_sheet_name_is_sanitized():
    ws = _sheet(to_excel_bytes(pd.DataFrame({"a": [1]}), "Q1/Q2: [top]*?\\ customers of 2026"))
    assert ws.title == "Q1_Q2_ _top____ customers of 20"


def test_exp015_empty_frames_still_make_a_workbook():
    ws = _sheet(to_excel_bytes(pd.DataFrame({"a": [], "b": []})))
    assert _header(ws) == ["a", "b"] and ws.max_row == 1 and ws.auto_filter.ref == "A1:B1"
    assert _sheet(to_excel_bytes(pd.DataFrame())).title == "customers"


@pytest.mark.parametrize(("name", "expected"), [
    ("customers", "customers"),
    ("x" * 40, "x" * 31),
    ("a:b", "a_b"),
    ("'quoted'", "quoted"),
    ("", "customers"),
    ("History", "customers"),
    ("😀" * 20, "😀" * 15),
])
def test_exp016_safe_sheet_name(name, expected):
    assert safe_sheet_name(name) == expected


def test_exp017_contact_list_selects_orders_and_sorts():
    out = contact_list(_customers(), [1, 2])
    assert list(out.columns) == ["customer_id", "name", "email", "segment", "persona"]
    assert out["segment"].tolist() == [1, 1, 1, 2]
    # "C3" makes the ids text, so they sort as text.
    assert out["customer_id"].tolist() == ["12346", "7", "C3", "2"]
    assert out.index.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("segments", [None, []])
def test_exp018_contact_list_without_selection_keeps_everyone(segments):
    out = contact_list(_customers(), segments)
    assert out["segment"].tolist() == [0, 0, 1, 1, 1, 2]
    assert out["customer_id"].tolist() == ["10", "9999", "12346", "7", "C3", "2"]


def test_exp019_contact_list_numeric_ids_sort_as_numbers():
    frame = pd.DataFrame({
        "customer_id": ["12346", "9999", "100"], "segment": [0, 0, 0], "persona": ["A"] * 3,
    })
    assert contact_list(frame, None)["customer_id"].tolist() == ["100", "9999", "12346"]


def test_exp020_contact_list_optional_columns():
    frame = _customers().drop(columns=["name", "email"])
    frame["rfm_segment"] = ["Champions"] * 6
    out = contact_list(frame, [0])
    assert list(out.columns) == ["customer_id", "segment", "persona", "rfm_segment"]
    assert out["customer_id"].tolist() == ["10", "9999"]
    assert contact_list(frame, [5]).empty


def test_exp021_contact_list_needs_id_segment_and_persona():
    with pytest.raises(KeyError, match="persona"):
        contact_list(_customers().drop(columns=["persona"]), None)


@pytest.mark.parametrize(("base", "kind", "ext", "expected"), [
    ("persona-engine", "customers", "csv", "persona-engine_customers_2026-11-22.csv"),
    ("persona-engine", "contacts", ".xlsx", "persona-engine_contacts_2026-11-22.xlsx"),
    ("Persona Engine", "Martín & co/../x", "csv", "Persona-Engine_Martin-co..x_2026-11-22.csv"),
    ("../../etc/passwd", "", "csv", "etcpasswd_2026-11-22.csv"),
    ("", "customers", "c;s$v", "export_customers_2026-11-22.csv"),
])
def test_exp022_export_filename(base, kind, ext, expected):
    assert export_filename(base, kind, ext, today=dt.date(2026, 11, 22)) == expected


def test_exp023_export_filename_defaults_to_today():
    name = export_filename("persona-engine", "customers", "csv")
    assert name == f"persona-engine_customers_{dt.date.today().isoformat()}.csv"


def test_exp024_mime_types():
    assert CSV_MIME == "text/csv"
    assert XLSX_MIME == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
