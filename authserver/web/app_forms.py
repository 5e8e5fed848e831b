"""The dashboard's "Register an app" form. It reads what was sent and offers the choices; the
registration rules are registration.account_app_registration's, the one place that rules on what
an account's app may be, for the JSON API and this page alike. `refuse` puts a refusal of those
rules beside the field it is about."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from ..oauth.scopes import SCOPES
from ..registration import MAX_URI_LENGTH, MAX_URIS

TYPE_CHOICES = [
    SelectChoice("confidential", "Runs on a server and keeps a client secret there."),
    SelectChoice("public", "A single-page or native app, which cannot keep a secret: it gets none, and always "
                           "uses PKCE."),
]
GRANT_TYPE_CHOICES = [
    SelectChoice("authorization_code", "People sign in with their account and allow your app."),
    SelectChoice("refresh_token", "Your app stays connected without asking people to sign in again."),
    SelectChoice("client_credentials", "Your app calls the API as itself, for no one in particular. "
                                       "Confidential apps only."),
]
# Where a refusal of the registration rules belongs, by how its message begins.
REFUSAL_FIELDS = (("name", "name"), ("redirect URI", "redirect_uris"), ("grant type", "grant_types"),
                  ("scope", "scopes"))


class _Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class RegisterAppForm(FlaskForm):
    name = StringField("Name", filters=[_strip], validators=[
        DataRequired("Name your app."), Length(max=200, message="Use at most 200 characters."),
    ])
    redirect_uris = TextAreaField("Redirect URIs", validators=[
        Length(max=MAX_URIS * (MAX_URI_LENGTH + 2), message=f"Enter at most {MAX_URIS} URIs."),
    ])
    client_type = RadioField("Type", choices=TYPE_CHOICES, default="confidential", validate_choice=False,
                             validators=[InputRequired("Choose confidential or public."),
                                         AnyOf(["confidential", "public"], message="Choose confidential or public.")])
    # The registration rules name unknown values: no choice check here.
    scopes = _Checkboxes("Scopes", choices=[SelectChoice(scope, text) for scope, text in SCOPES.items()],
                         default=["openid", "profile"], validate_choice=False)
    grant_types = _Checkboxes("Grant types", choices=GRANT_TYPE_CHOICES,
                              default=["authorization_code", "refresh_token"], validate_choice=False)

    def redirect_uri_lines(self) -> list[str]:
        """One URI per line; blank lines and surrounding spaces do not count."""
        return [line.strip() for line in (self.redirect_uris.data or "").splitlines() if line.strip()]

    def refuse(self, message: str) -> None:
        """Show a refusal of the registration rules beside its field, or above the form."""
        shown = message[:1].upper() + message[1:]
        for prefix, field in REFUSAL_FIELDS:
            if message.startswith(prefix):
                self[field].errors.append(shown)
                return
        self.form_errors.append(shown)
