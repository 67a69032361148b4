"""The stable hash is fixed: the orderings, samples and rotations of earlier builds depend on its values."""

from cpqa.ordering import stable_hash


def test_values_are_fixed():
    assert stable_hash("clip-1") == 14231887928612744438
    assert stable_hash("clip-1", digest_size=4) == 2213895901
    assert stable_hash("a") != stable_hash("b")
