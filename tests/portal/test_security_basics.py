"""Security basics of the embedded default (issue 12, first part): weak passwords are refused, and
the data folder (database, keys, generated passwords) is readable by the portal's user only."""

import os
import stat

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError


@pytest.mark.parametrize("weak", ["password", "12345678", "qwertyuiop", "1234567890", "Kort-1"])
def test_common_numeric_and_short_passwords_are_refused(weak):
    with pytest.raises(ValidationError):
        validate_password(weak)


def test_a_sentence_like_password_is_taken():
    validate_password("Kanelbulle-2026")


def test_the_data_folder_is_private():
    mode = stat.S_IMODE(os.stat(settings.DATA_DIR).st_mode)
    assert mode & 0o077 == 0, oct(mode)
