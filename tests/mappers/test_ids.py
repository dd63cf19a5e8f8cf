import random
import uuid

import pytest

from mappers.ids import NAMESPACE, resource_id


@pytest.mark.parametrize("key", [("Observation", "a", "OBX", "48018-6", "2a", "1"), ("Patient",), ("Bundle", ""),
                                 ("Specimen", "欧阳明", "é|x", "\U0001f9ec")])
def test_resource_id_is_the_uuid5_of_type_and_key(key: tuple[str, ...]) -> None:
    got = resource_id(*key)
    assert got == str(uuid.uuid5(NAMESPACE, "|".join(key)))
    assert uuid.UUID(got).version == 5


def test_resource_id_agrees_with_uuid5_on_many_keys() -> None:
    rng = random.Random(14)
    alphabet = "abcXYZ019|-_ :/é欧\U0001f9ec"
    for _ in range(3000):
        key = tuple("".join(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(rng.randrange(5)))
        assert resource_id("Observation", *key) == str(uuid.uuid5(NAMESPACE, "|".join(("Observation", *key))))
