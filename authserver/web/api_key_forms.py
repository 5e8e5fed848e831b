"""The forms of the API keys page. They read what was sent and offer fixed choices (expiry, grace
period); the name and the scopes are checked by storage.api_keys, the one place that rules on
what a key may be, for the JSON API and this page alike."""

from __future__ import annotations

import time

from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf

from ..oauth.scopes import API_KEY_SCOPES, SCOPES

DAY = 86400
NEVER = "never"
EXPIRY_CHOICES = [SelectChoice(NEVER, "Never"), SelectChoice("30", "In 30 days"), SelectChoice("90", "In 90 days"),
                  SelectChoice("365", "In 365 days")]
GRACE_CHOICES = [SelectChoice("0", "Stops at once"), SelectChoice("3600", "For 1 hour"),
                 SelectChoice("86400", "For 24 hours"), SelectChoice("604800", "For 7 days")]
DEFAULT_GRACE = "86400"


def _choice(choices: list[SelectChoice], message: str) -> AnyOf:
    return AnyOf([choice.value for choice in choices], message=message)


class NewKeyForm(FlaskForm):
    name = StringField("Name")
    scopes = SelectMultipleField("Scopes", choices=[SelectChoice(scope, SCOPES[scope]) for scope in API_KEY_SCOPES],
                                 validate_choice=False)  # storage names the allowed ones
    expires = SelectField("Expires", choices=EXPIRY_CHOICES, default=NEVER, validate_choice=False, validators=[
        _choice(EXPIRY_CHOICES, "Choose when the key expires: never, or in 30, 90 or 365 days."),
    ])

    def expires_at(self, now: float | None = None) -> int | None:
        """The chosen expiry as an epoch second; None for never."""
        if self.expires.data == NEVER:
            return None
        return int(time.time() if now is None else now) + int(self.expires.data) * DAY


class RotateForm(FlaskForm):
    grace = SelectField("Old key keeps working", choices=GRACE_CHOICES, default=DEFAULT_GRACE, validate_choice=False,
                        validators=[_choice(GRACE_CHOICES, "Choose how long the old key keeps working: not at all, "
                                                           "1 hour, 24 hours or 7 days.")])

    @property
    def grace_seconds(self) -> int:
        return int(self.grace.data)
