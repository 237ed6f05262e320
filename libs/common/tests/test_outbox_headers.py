import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from fx_common.processing.relay import headers_of
from fx_common.processing.unit_of_work import headers_json

_HEADERS = st.lists(st.tuples(st.text(), st.binary()), max_size=12)


@given(_HEADERS)
def test_headers_json_is_what_json_dumps_gives(headers: list[tuple[str, bytes]]) -> None:
    expected = json.dumps([[k, base64.b64encode(v).decode()] for k, v in headers])
    assert headers_json(headers) == expected


@given(_HEADERS)
def test_the_relay_reads_back_the_headers(headers: list[tuple[str, bytes]]) -> None:
    assert headers_of(headers_json(headers)) == headers
