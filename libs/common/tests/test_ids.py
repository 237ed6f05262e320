import uuid

from hypothesis import given
from hypothesis import strategies as st

from fx_common.ids import uuid5_str


@given(st.uuids(), st.text())
def test_uuid5_str_is_the_standard_librarys_uuid5(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_str(namespace, name) == str(uuid.uuid5(namespace, name))


def test_uuid5_str_of_a_known_name() -> None:
    # RFC 4122 appendix example, corrected (errata 1352): python.org in the DNS namespace
    assert uuid5_str(uuid.NAMESPACE_DNS, "python.org") == "886313e1-3b8a-5372-9b90-0c9aee199e5d"
