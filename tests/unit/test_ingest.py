"""read_table on the real data and on small hand-made files: formats, roles, types and errors."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from dashapp.errors import (
    DuplicateColumnsError,
    EmptyFileError,
    HeaderOnlyError,
    MappingError,
    MissingRoleError,
    NonFiniteError,
    ParseError,
    RaggedRowsError,
    TooLargeError,
    UnsupportedFormatError,
)
from dashapp.ingest import CUSTOMERS, TRANSACTIONS, read_table
from dashapp.settings import Limits

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SALES = DATA / "sales_data_sample" / "sales_data_sample.csv"
RETAIL = DATA / "online_retail" / "online_retail_sample_20000.csv"
MALL = DATA / "mall_customers" / "Mall_Customers.csv"

LOG = (
    "customer_id,order_id,order_date,amount\n"
    "A,1,2024-01-05,10\nA,2,2024-02-05,20\nB,3,2024-03-05,5\n"
)


def _log(rows: list[str], header: str = "customer,invoice,date,amount") -> bytes:
    return (header + "\n" + "\n".join(rows) + "\n").encode()


def _dated(dates: list[str]) -> bytes:
    return _log([f"C{i % 2},{i},{d},1" for i, d in enumerate(dates)])


@pytest.fixture(scope="module")
def sales():
    return read_table(SALES.read_bytes(), SALES.name)


@pytest.fixture(scope="module")
def retail():
    return read_table(RETAIL.read_bytes(), RETAIL.name)


# ------------------------------------------------------------------ real data


def test_sales_sample_is_a_cp1252_transaction_log(sales):
    assert sales.encoding == "cp1252"
    assert any("not valid UTF-8" in n for n in sales.notices)
    assert sales.shape == TRANSACTIONS and sales.file_format == "csv"
    assert sales.delimiter == ","
    expected = {"customer_id": "CUSTOMERNAME", "order_id": "ORDERNUMBER",
                "order_date": "ORDERDATE", "amount": "SALES"}
    assert expected.items() <= sales.mapping.items()
    assert sales.date_format == "%m/%d/%Y %H:%M" and not sales.date_ambiguous
    lines = sales.canonical()
    assert len(lines) == 2823
    assert lines["customer_id"].nunique() == 92
    assert lines["order_id"].nunique() == 307
    assert lines["order_date"].min() == pd.Timestamp("2003-01-06")
    assert lines["order_date"].max() == pd.Timestamp("2005-05-31")
    assert lines["amount"].sum() == pytest.approx(10_032_628.85)
    assert lines["amount"].dtype == "float64"
    assert sales.bad_values == {}


def test_sales_sample_keeps_text_na_and_decodes_cp1252(sales):
    territory = sales.table["TERRITORY"]
    assert (territory == "NA").sum() == 1074
    assert territory.isna().sum() == 0
    assert sales.table["ADDRESSLINE2"].isna().sum() == 2521
    assert "Berguvsv\u201egen  8" in set(sales.table["ADDRESSLINE1"])


def test_online_retail_derives_amount_from_quantity_and_price(retail):
    assert retail.shape == TRANSACTIONS and retail.encoding == "utf-8"
    expected = {"customer_id": "CustomerID", "order_id": "InvoiceNo",
                "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "UnitPrice"}
    assert expected.items() <= retail.mapping.items()
    assert "amount" not in retail.mapping
    assert retail.date_format == "%Y-%m-%d %H:%M:%S"
    lines = retail.canonical()
    assert lines["amount"].sum() == pytest.approx(367_644.91)
    assert lines["customer_id"].isna().sum() == 5078
    assert lines["order_id"].str.startswith("C").sum() == 350
    assert (lines["quantity"] < 0).sum() == 398
    assert lines["customer_id"].nunique() == 3049
    assert lines["customer_id"].iloc[1] == "12621"
    assert not lines["customer_id"].dropna().str.contains(".", regex=False).any()


def test_mall_customers_is_a_customer_table():
    mall = read_table(MALL.read_bytes(), MALL.name)
    assert mall.shape == CUSTOMERS
    assert mall.mapping["customer_id"] == "CustomerID"
    assert mall.attributes == ("Age", "Annual Income (k$)", "Spending Score (1-100)")
    assert "Genre" in mall.categoricals
    frame = mall.canonical()
    assert len(frame) == 200
    assert frame["customer_id"].iloc[0] == "0001" and frame["customer_id"].is_unique
    assert list(frame.columns) == ["customer_id", *mall.attributes, "Genre"]
    assert frame["Age"].dtype == "float64" and frame["Age"].mean() == pytest.approx(38.85)
    assert not mall.id_synthesized


# ------------------------------------------------------------------ delimiters and encodings


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("id,name,age\n1,Ann,30\n2,Bob,40\n", ","),
        ("id;name;age\n1;Ann;30\n2;Bob;40\n", ";"),
        ("id\tname\tage\n1\tAnn\t30\n2\tBob\t40\n", "\t"),
        ("id|name|age\n1|Ann|30\n2|Bob|40\n", "|"),
        ("id   name   age\n1    Ann    30\n2    Bob    40\n", r"\s+"),
    ],
)
def test_each_delimiter_is_sniffed(text, delimiter):
    got = read_table(text.encode(), "people.txt")
    assert got.delimiter == delimiter
    assert list(got.table.columns) == ["id", "name", "age"]
    assert got.table["name"].tolist() == ["Ann", "Bob"]
    assert got.table["age"].tolist() == [30.0, 40.0]


def test_extension_breaks_a_delimiter_tie():
    text = b"a\tb,c\n1\t2,3\n"
    assert read_table(text, "x.tsv").delimiter == "\t"
    assert read_table(text, "x.csv").delimiter == ","


def test_decimal_comma_with_semicolons():
    data = "Kunde;Datum;Betrag\nA;2024-01-02;1.234,56\nA;2024-01-03;12,5\nB;2024-01-04;3\n"
    got = read_table(data.encode(), "umsatz.csv")
    assert got.delimiter == ";" and got.decimal == ","
    assert got.canonical()["amount"].tolist() == [1234.56, 12.5, 3.0]
    assert any("decimal comma" in n for n in got.notices)


def test_semicolon_file_with_dot_decimals_keeps_the_dot():
    data = "customer;date;amount\nA;2024-01-02;12.50\nA;2024-01-03;3.25\n"
    got = read_table(data.encode(), "x.csv")
    assert got.decimal == "."
    assert got.canonical()["amount"].tolist() == [12.5, 3.25]


def test_utf8_bom_is_removed_from_the_first_name():
    got = read_table(b"\xef\xbb\xbf" + LOG.encode(), "log.csv")
    assert got.encoding == "utf-8-sig"
    assert got.mapping["customer_id"] == "customer_id"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec):
    bom = b"\xff\xfe" if codec == "utf-16-le" else b"\xfe\xff"
    text = "name,city,age\nMüller,Köln,40\nSánchez,Sevilla,30\n"
    got = read_table(bom + text.encode(codec), "people.csv")
    assert got.encoding == "utf-16"
    assert got.table["name"].tolist() == ["Müller", "Sánchez"]


def test_cp1252_fallback():
    got = read_table("name,age\nMüller,40\nO’Neil,30\n".encode("cp1252"), "p.csv")
    assert got.encoding == "cp1252"
    assert got.table["name"].tolist() == ["Müller", "O’Neil"]


def test_bytes_undefined_in_cp1252_fall_back_to_latin1():
    got = read_table(b"name,age\nA\x81b,40\nC,30\n", "p.csv")
    assert got.encoding == "iso-8859-1"
    assert got.table["name"].iloc[0] == "A\x81b"


def test_header_names_are_stripped():
    got = read_table(b" customer , date ,amount \nA,2024-01-01,1\nA,2024-01-02,2\n", "x.csv")
    assert list(got.table.columns) == ["customer", "date", "amount"]
    assert got.mapping["order_date"] == "date"


# ------------------------------------------------------------------ file errors


@pytest.mark.parametrize("data", [b"", b"  \n\t\r\n"])
def test_empty_file(data):
    with pytest.raises(EmptyFileError, match="empty"):
        read_table(data, "empty.csv")


def test_header_only():
    with pytest.raises(HeaderOnlyError, match="no data rows") as err:
        read_table(b"customer,date,amount\n", "h.csv")
    assert "'amount'" in str(err.value)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"%PDF-1.7\n...", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (gzip.compress(b"a,b\n1,2\n"), "gzip"),
        (b"id,name\x00\x00\x01\x02", "binary"),
    ],
)
def test_binary_content_is_refused_whatever_the_extension(data, needle):
    with pytest.raises(UnsupportedFormatError, match=needle) as err:
        read_table(data, "data.csv")
    assert "CSV" in str(err.value) and "xlsx" in str(err.value)


def test_old_xls_says_save_as_xlsx():
    with pytest.raises(UnsupportedFormatError, match="save it as .xlsx or CSV"):
        read_table(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old.xls")


def test_zip_that_is_not_a_workbook():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    with pytest.raises(UnsupportedFormatError, match="zip archive"):
        read_table(buffer.getvalue(), "data.xlsx")


def test_longer_row_names_its_line():
    data = b"customer,date,amount\nA,2024-01-01,1\nB,2024-01-02,2,extra\nC,2024-01-03,3\n"
    with pytest.raises(RaggedRowsError) as err:
        read_table(data, "r.csv")
    assert "Line 3" in str(err.value) and "4 fields" in str(err.value)
    assert err.value.rows == (3,)


def test_longer_first_data_row_is_not_cut_silently():
    with pytest.raises(RaggedRowsError, match="Line 2"):
        read_table(b"a,b,c\n1,2,3,4\n5,6,7\n", "r.csv")


def test_shorter_rows_are_padded_with_missing():
    got = read_table(b"id,name,age\n1,Ann,30\n2,Bob\n3,Cid,50\n", "p.csv")
    assert got.table["age"].isna().tolist() == [False, True, False]
    assert any("fewer fields" in n for n in got.notices)


@pytest.mark.parametrize("header", [b"id,amount,amount", b"id,amount , amount"])
def test_duplicate_columns(header):
    with pytest.raises(DuplicateColumnsError, match="'amount' appears twice") as err:
        read_table(header + b"\n1,2,3\n", "d.csv")
    assert err.value.column == "amount"
    assert "columns 2 and 3" in str(err.value)


def test_too_many_bytes_is_checked_first():
    with pytest.raises(TooLargeError, match="limit"):
        read_table(b"\x00" * 100, "x.csv", limits=Limits(max_bytes=10))


def test_too_many_columns():
    with pytest.raises(TooLargeError, match="3 columns; the limit is 2"):
        read_table(b"a,b,c\n1,2,3\n", "x.csv", limits=Limits(max_columns=2))


def test_too_many_rows():
    data = b"id,age\n" + b"".join(b"%d,30\n" % i for i in range(5))
    with pytest.raises(TooLargeError, match="more than 3 data rows"):
        read_table(data, "x.csv", limits=Limits(max_rows=3))


def test_blank_lines_do_not_count_as_rows():
    data = b"id,age\n1,30\n\n\n\n\n2,40\n\n\n"
    got = read_table(data, "x.csv", limits=Limits(max_rows=2))
    assert got.table["age"].tolist() == [30.0, 40.0]


# ------------------------------------------------------------------ roles and mapping


def test_mapping_overrides_detection():
    data = b"customer,date,shipped,amount\nA,2024-01-01,2024-02-01,1\nA,2024-01-05,2024-02-09,2\n"
    assert read_table(data, "x.csv").mapping["order_date"] == "date"
    got = read_table(data, "x.csv", mapping={"order_date": "shipped"})
    assert got.mapping["order_date"] == "shipped"
    assert got.canonical()["order_date"].tolist() == [pd.Timestamp("2024-02-01"),
                                                       pd.Timestamp("2024-02-09")]


def test_mapping_to_a_missing_column_lists_the_columns():
    with pytest.raises(MappingError) as err:
        read_table(LOG.encode(), "x.csv", mapping={"amount": "NOPE"})
    message = str(err.value)
    assert "NOPE" in message and "'customer_id'" in message and "'order_date'" in message


def test_unknown_role_lists_the_valid_roles():
    with pytest.raises(MappingError, match="Unknown role 'bogus'") as err:
        read_table(LOG.encode(), "x.csv", mapping={"bogus": "amount"})
    assert "unit_price" in str(err.value) and "customer table" in str(err.value)


def test_missing_required_role_explains_the_fix():
    data = b"customer,date,note\nA,2024-01-01,x\nA,2024-01-02,y\n"
    with pytest.raises(MissingRoleError) as err:
        read_table(data, "x.csv", shape="transactions")
    message = str(err.value)
    assert "amount" in message and "'note'" in message
    assert "--map" in message and "dropdowns" in message


def test_order_log_without_a_customer_column_is_not_a_customer_table():
    data = b"invoice,date,amount\n1,2024-01-01,5\n2,2024-01-02,6\n"
    with pytest.raises(MissingRoleError, match="customer id"):
        read_table(data, "x.csv")


def test_shape_and_mapping_can_force_a_customer_table():
    got = read_table(LOG.encode(), "x.csv", shape="customers")
    assert got.shape == CUSTOMERS
    assert "amount" in got.attributes and "order_date" not in got.attributes


def test_unique_customers_with_dates_read_as_a_customer_table():
    data = b"customer_id,signup_date,spend\nA,2024-01-01,5\nB,2024-01-02,6\n"
    got = read_table(data, "x.csv")
    assert got.shape == CUSTOMERS and got.attributes == ("spend",)


def test_customer_table_without_id_numbers_the_rows():
    data = b"Gender,Age,Income\nMale,30,10\nFemale,40,20\nMale,50,30\n"
    got = read_table(data, "x.csv")
    assert got.id_synthesized
    frame = got.canonical()
    assert frame["customer_id"].tolist() == ["1", "2", "3"]
    assert got.attributes == ("Age", "Income") and got.categoricals == ("Gender",)
    assert any("No customer id column" in n for n in got.notices)


def test_customer_attribute_with_empty_values_is_kept_for_cleaning():
    rows = "".join(f"{i:04d},{'' if i == 3 else 20 + i}\n" for i in range(60))
    got = read_table(("CustomerID,Age\n" + rows).encode(), "x.csv")
    assert got.table["Age"].isna().sum() == 1 and got.bad_values == {}


def test_customer_attribute_with_too_much_text_is_refused():
    rows = "".join(f"{i},{'old' if i % 10 == 0 else 20 + i}\n" for i in range(60))
    with pytest.raises(ParseError, match="'Age'"):
        read_table(("id,Age\n" + rows).encode(), "x.csv", shape="customers")


def test_role_missing_tokens_and_text_na():
    data = b"customer,date,amount,region\nA,2024-01-01,1,NA\nNULL,2024-01-02,2,EU\nA,N/A,3,NA\n"
    got = read_table(data, "x.csv")
    lines = got.canonical()
    assert lines["customer_id"].isna().tolist() == [False, True, False]
    assert lines["order_date"].isna().tolist() == [False, False, True]
    assert got.table["region"].tolist() == ["NA", "EU", "NA"]
    assert got.bad_values == {}


# ------------------------------------------------------------------ dates


def test_yyyymmdd_integers():
    got = read_table(_log(["A,1,20240105,1", "A,2,20240210,2"]), "x.csv")
    assert got.date_format == "%Y%m%d"
    assert got.canonical()["order_date"].tolist() == [pd.Timestamp("2024-01-05"),
                                                       pd.Timestamp("2024-02-10")]


def test_ambiguous_dates_month_first_by_default_and_day_first_on_request():
    data = _dated(["03/04/2024", "05/06/2024", "01/02/2024"])
    month = read_table(data, "x.csv")
    assert month.date_ambiguous and not month.dayfirst
    assert month.date_format == "%m/%d/%Y"
    assert month.canonical()["order_date"].iloc[0] == pd.Timestamp("2024-03-04")
    assert any("ambiguous" in n and "--dayfirst" in n for n in month.notices)
    day = read_table(data, "x.csv", dayfirst=True)
    assert day.date_ambiguous and day.dayfirst and day.date_format == "%d/%m/%Y"
    assert day.canonical()["order_date"].iloc[0] == pd.Timestamp("2024-04-03")


def test_a_day_above_twelve_makes_day_first_certain():
    got = read_table(_dated(["03/04/2024 10:30", "13/01/2024 10:30", "01/02/2024 08:00"]),
                     "x.csv", dayfirst=False)
    assert got.dayfirst and not got.date_ambiguous
    assert got.date_format == "%d/%m/%Y %H:%M"
    assert got.canonical()["order_date"].iloc[1] == pd.Timestamp("2024-01-13 10:30")
    assert any("can only be day first" in n for n in got.notices)


def test_a_month_first_file_is_certain_too():
    got = read_table(_dated(["12/31/2023", "01/02/2024", "05/06/2024"]), "x.csv", dayfirst=True)
    assert not got.dayfirst and not got.date_ambiguous
    assert got.canonical()["order_date"].iloc[0] == pd.Timestamp("2023-12-31")


def test_iso_dates_with_offsets_become_utc():
    got = read_table(_dated(["2024-01-01T10:00:00+02:00", "2024-01-01T10:00:00Z",
                                   "2024-01-02T10:00:00-01:00"]), "x.csv")
    assert got.canonical()["order_date"].tolist() == [pd.Timestamp("2024-01-01 08:00"),
                                                       pd.Timestamp("2024-01-01 10:00"),
                                                       pd.Timestamp("2024-01-02 11:00")]


def test_few_bad_dates_are_kept_as_missing_and_listed():
    dates = [f"2024-01-{1 + i % 28:02d}" for i in range(100)]
    dates[41] = "someday"
    got = read_table(_dated(dates), "x.csv")
    assert got.bad_values == {"date": [(43, "someday")]}
    assert pd.isna(got.canonical()["order_date"].iloc[41])
    assert any("'date'" in n and "row 43" in n for n in got.notices)


def test_many_bad_dates_raise_with_rows_and_examples():
    dates = [f"2024-01-{1 + i % 28:02d}" for i in range(100)]
    for i in (10, 20, 30, 40, 50):
        dates[i] = f"soon{i}"
    with pytest.raises(ParseError) as err:
        read_table(_dated(dates), "x.csv")
    message = str(err.value)
    assert "'date'" in message and "5 of 100" in message
    assert "'soon10' in row 12" in message and "'soon30' in row 32" in message
    assert "soon40" not in message
    assert err.value.column == "date" and err.value.rows == (12, 22, 32)


def test_bad_share_cap_comes_from_limits():
    dates = [f"2024-01-{1 + i % 28:02d}" for i in range(100)]
    for i in (10, 20, 30):
        dates[i] = "later"
    got = read_table(_dated(dates), "x.csv", limits=Limits(max_bad_share=0.05))
    assert [row for row, _ in got.bad_values["date"]] == [12, 22, 32]


# ------------------------------------------------------------------ numbers and ids


def test_currency_symbols_thousands_and_parentheses():
    rows = ['A,1,2024-01-01,"$1,234.50"', "A,2,2024-01-02,€ 12", "B,3,2024-01-03,(12.50)",
            "B,4,2024-01-04,USD 5", "C,5,2024-01-05,£7", "C,6,2024-01-06,-3.5"]
    got = read_table(_log(rows), "x.csv")
    assert got.canonical()["amount"].tolist() == [1234.5, 12.0, -12.5, 5.0, 7.0, -3.5]


def test_infinity_is_refused_with_column_and_row():
    with pytest.raises(NonFiniteError) as err:
        read_table(_log(["A,1,2024-01-01,1", "A,2,2024-01-02,inf"]), "x.csv")
    assert "'amount'" in str(err.value) and "3" in str(err.value)
    assert err.value.column == "amount" and err.value.rows == (3,)


def test_long_and_zero_padded_ids_stay_text():
    data = (b"customer,order,date,amount\n"
            b"1234567890123456789,0001,2024-01-01,1\n1234567890123456789,0002,2024-01-02,2\n")
    lines = read_table(data, "x.csv").canonical()
    assert lines["customer_id"].tolist() == ["1234567890123456789"] * 2
    assert lines["order_id"].tolist() == ["0001", "0002"]


# ------------------------------------------------------------------ other formats


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["CustomerID", "InvoiceDate", "Amount", "Check"])
    sheet.append([12346, datetime(2024, 1, 5, 10, 30), 10.5, "=1+1"])
    sheet.append([12346, datetime(2024, 2, 5), 2, "=A2*2"])
    sheet.append([1234567890123456, "2024-03-05", 4.25, None])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xlsx_native_values_and_no_formula_text():
    got = read_table(_xlsx(), "upload.csv")
    assert got.file_format == "xlsx" and got.shape == TRANSACTIONS
    lines = got.canonical()
    assert lines["customer_id"].tolist() == ["12346", "12346", "1234567890123456"]
    assert lines["order_date"].tolist() == [pd.Timestamp("2024-01-05 10:30"),
                                            pd.Timestamp("2024-02-05"),
                                            pd.Timestamp("2024-03-05")]
    assert lines["amount"].tolist() == [10.5, 2.0, 4.25]
    # openpyxl stores no cached result for a formula, so data_only reads None; the formula
    # text itself must never come back as a value.
    check = got.table["Check"]
    assert check.isna().all()
    assert not check.astype(str).str.startswith("=").any()


def test_parquet_float_ids_lose_the_trailing_zero():
    frame = pd.DataFrame({
        "CustomerID": [12346.0, np.nan, 12346.0],
        "InvoiceDate": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        "Quantity": [1, 2, 3],
        "UnitPrice": [2.5, 1.0, 4.0],
    })
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    got = read_table(buffer.getvalue(), "data.bin")
    assert got.file_format == "parquet" and got.encoding == "parquet"
    lines = got.canonical()
    assert lines["customer_id"].tolist()[0] == "12346" and pd.isna(lines["customer_id"][1])
    assert lines["amount"].tolist() == [2.5, 2.0, 12.0]
    assert got.date_format is None


def test_parquet_infinity_is_refused():
    frame = pd.DataFrame({"id": ["a", "b"], "score": [1.0, np.inf]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    with pytest.raises(NonFiniteError, match="'score'.*row\\(s\\) 3"):
        read_table(buffer.getvalue(), "x.parquet")


@pytest.mark.parametrize("wrap", ["list", "data", "lines"])
def test_json_records(wrap):
    records = [{"customer_id": 12346, "date": "2024-01-01", "amount": 5},
               {"customer_id": 12346, "date": "2024-01-03", "amount": 7.5},
               {"customer_id": None, "date": "2024-01-04", "amount": 1}]
    if wrap == "lines":
        data = "\n".join(json.dumps(r) for r in records).encode()
    else:
        data = json.dumps(records if wrap == "list" else {"data": records}).encode()
    got = read_table(data, "orders.json")
    assert got.file_format == "json" and got.shape == TRANSACTIONS
    lines = got.canonical()
    assert lines["customer_id"].tolist()[:2] == ["12346", "12346"]
    assert pd.isna(lines["customer_id"].iloc[2])
    assert lines["amount"].tolist() == [5.0, 7.5, 1.0]


def test_json_that_is_not_records():
    with pytest.raises(UnsupportedFormatError, match="not valid JSON"):
        read_table(b'{"a": 1,', "x.json")


def test_canonical_orders_roles_and_derives_amount():
    data = b"qty,price,cust,date\n2,1.5,A,2024-01-01\n3,2,A,2024-01-02\n"
    got = read_table(data, "x.csv")
    frame = got.canonical()
    assert list(frame.columns) == ["customer_id", "order_date", "amount", "quantity",
                                   "unit_price"]
    assert frame["amount"].tolist() == [3.0, 6.0]
    assert got.table.columns.tolist() == ["qty", "price", "cust", "date"]


def test_impossible_calendar_dates_are_bad_dates_not_rolled_over():
    rows = ["customer,order,date,amount"]
    rows += [f"c{i % 50},{i},{(i % 12) + 1}/{(i % 27) + 1}/2023,10" for i in range(300)]
    rows += ["x,900,02/30/2023,5", "y,901,04/31/2023,5", "z,902,03/01/2023,5"]
    ing = read_table("\n".join(rows).encode(), "orders.csv")
    dates = ing.table[ing.mapping["order_date"]]
    assert dates.iloc[-3:].isna().tolist() == [True, True, False]
    assert dates.iloc[-1] == pd.Timestamp("2023-03-01")
    assert [row for row, _ in ing.bad_values[ing.mapping["order_date"]]] == [302, 303]
