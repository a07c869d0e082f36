"""``stnlab data info NAME --from DIR``: the layout readers (models.data.layout) from the CLI."""

from __future__ import annotations

import json

import pytest

from tests.models.test_data_cli import assert_one_line_error, run


def test_info_from_dir_svhn_and_plankton(tmp_path, capsys):
    pytest.importorskip("h5py")
    from tests.models.test_data_plankton import CLASSES, write_jpg
    from tests.models.test_data_svhn import TEST, TRAIN, write_split

    sv = tmp_path / "svhn"
    write_split(sv, "train", TRAIN)
    write_split(sv, "test", TEST)
    rc, out, _ = run(capsys, "info", "svhn", "--from", str(sv), "--json")
    assert rc == 0 and json.loads(out)["splits"] == {"train": 3, "test": 2}
    # --json PATH, as every other command: the JSON to the file, the text on stdout
    dest = tmp_path / "sub" / "svhn.json"
    rc, out, _ = run(capsys, "info", "svhn", "--from", str(sv), "--json", str(dest))
    assert rc == 0 and json.loads(dest.read_text())["splits"] == {"train": 3, "test": 2}
    assert "splits: train 3, test 2" in out
    rc, out, _ = run(capsys, "info", "svhn", "--from", str(sv), "--json", "-")
    assert rc == 0 and json.loads(out)["dataset"] == "svhn"
    pl = tmp_path / "plankton"
    for i, c in enumerate(CLASSES):
        (pl / "train" / c).mkdir(parents=True)
        write_jpg(pl / "train" / c / f"{i}.jpg")
    (pl / "test" / CLASSES[0]).mkdir(parents=True)
    for n in range(10):
        write_jpg(pl / "test" / CLASSES[0] / f"{n}.jpg")
    rc, out, _ = run(capsys, "info", "plankton", "--from", str(pl))
    assert rc == 0 and "splits: train 121, val 3, test 7" in out and "classes: 121" in out


def test_info_from_wrong_dir_one_line_naming_the_layout(tmp_path, capsys):
    rc, _, err = run(capsys, "info", "plankton", "--from", str(tmp_path))
    assert rc == 2
    assert_one_line_error(err, "train/ directory", "expected layout: PlanktonSet 1.0")
    rc, _, err = run(capsys, "info", "svhn", "--from", str(tmp_path / "nowhere"))
    assert rc == 2
    assert_one_line_error(err, "expected layout: SVHN format 1")


def test_info_name_without_from_and_unknown_name(capsys):
    rc, _, err = run(capsys, "info", "svhn")
    assert rc == 2
    assert_one_line_error(err, "expected --from DIR")
    rc, _, err = run(capsys, "info", "imagenet", "--from", ".")
    assert rc == 2
    assert_one_line_error(err, "expected NAME in")
