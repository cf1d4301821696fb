"""Trial lists: reading, list names, and the refusal of speakers both trained and scored."""

import pytest

from camsat_lobes.prepare import DEFAULT_TRIAL_LISTS, read_trial_list, utterance_id
from camsat_lobes.prepare.trials import _check_list_names, _check_no_shared_speakers


def test_broken_line_is_named(tmp_path):
    broken = tmp_path / "broken.txt"
    broken.write_text("1 spkC/s1/u1.wav spkC/s2/u1.wav\ntarget spkC/s1/u1.wav x.wav\n")
    with pytest.raises(ValueError, match="broken.txt, line 2"):
        read_trial_list(broken)
    flat = tmp_path / "flat.txt"
    flat.write_text("1 u1.wav u2.wav\n")
    with pytest.raises(ValueError, match=r"flat.txt, line 1: 'u1.wav' is not a <speaker>/"):
        read_trial_list(flat)


def test_voxceleb_lines_are_read():
    assert DEFAULT_TRIAL_LISTS == {
        "O": "veri_test2.txt",
        "E": "list_test_all2.txt",
        "H": "list_test_hard2.txt",
    }
    assert utterance_id("id10270/5r0dWxy17C8/00001.wav") == "id10270--5r0dWxy17C8--00001"


@pytest.mark.parametrize("lists", [{}, ["veri_test2.txt"], {"O/1": "a.txt"}, {"": "a.txt"}])
def test_unusable_list_names_are_refused(lists):
    with pytest.raises(ValueError, match="trial_lists|cannot name a file"):
        _check_list_names(lists)


def test_shared_speakers_are_named_with_the_list_and_the_fix():
    lists = {"O": {"id10270", "id10271"}, "E": {f"id{10270 + i}" for i in range(9)}}
    files = {"O": "/v/veri_test2.txt", "E": "/v/list_test_all2.txt"}
    train = {"id00012", "id10272", *(f"id{10273 + i}" for i in range(6))}
    with pytest.raises(ValueError) as error:
        _check_no_shared_speakers(train, lists, files, "remove them")
    message = str(error.value)
    assert message.startswith("the training set shares 7 speakers with trial list E")
    assert "(/v/list_test_all2.txt): id10272, id10273, id10274, id10275, id10276 and 2 more" in (
        message
    )
    assert message.endswith("remove them")
    _check_no_shared_speakers({"id00012"}, lists, files, "")
