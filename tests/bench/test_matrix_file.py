"""The matrix file's selections: an empty list is refused, naming the file (it read as not
given, and ran every built-in workload)."""

import pytest
from distbench.core.errors import UserError
from distbench.session import matrix_file


@pytest.mark.parametrize("key", ["workloads", "strategies", "loops"])
def test_an_empty_selection_is_refused_naming_the_file(tmp_path, key):
    path = tmp_path / "distbench.toml"
    path.write_text(f"{key} = []\n")
    with pytest.raises(UserError, match=rf"^{path}: {key} = \[\] selects nothing; name at least one, or leave {key} "
                                        rf"out to run them all\.$"):
        matrix_file.read(path)
    path.write_text(f'{key} = ["x"]\n')
    assert list(matrix_file.read(path).values()) == [["x"]]
