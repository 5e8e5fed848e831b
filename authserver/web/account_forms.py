"""The forms that set a password: sign-up and password change, with the strength rule
(password_rules) and the email and name checks of the accounts storage."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, Form, PasswordField, StringField, ValidationError
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length

from ..password_rules import MAX_LENGTH, MIN_LENGTH, password_problem
from ..storage.users import is_valid_email

PASSWORD_HINT = f"At least {MIN_LENGTH} characters. A few unrelated words make a strong, memorable one."


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _email_shape(form: Form, field: Field) -> None:
    if not is_valid_email(field.data or ""):
        raise ValidationError("Enter an email address like name@example.com.")


def _printable(form: Form, field: Field) -> None:
    if any(not character.isprintable() for character in field.data or ""):
        raise ValidationError("Use letters, digits, spaces and punctuation only.")


class _StrongPassword:
    """The strength rule, against the email `email_of(form)` returns."""

    def __init__(self, email_of) -> None:
        self.email_of = email_of

    def __call__(self, form: Form, field: Field) -> None:
        problem = password_problem(field.data or "", self.email_of(form) or "")
        if problem:
            raise ValidationError(problem)


def _confirmation() -> PasswordField:
    return PasswordField("Confirm password", validators=[
        InputRequired("Type the password again."),
        EqualTo("password", "The two passwords are not the same."),
    ])


class SignUpForm(FlaskForm):
    email = EmailField("Email", validators=[
        DataRequired("Enter your email address."), Length(max=320, message="Use at most 320 characters."), _email_shape,
    ])
    name = StringField("Name", filters=[_strip], validators=[
        DataRequired("Enter your name."), Length(max=200, message="Use at most 200 characters."), _printable,
    ])
    password = PasswordField("Password", validators=[
        InputRequired("Choose a password."), _StrongPassword(lambda form: form.email.data),
    ])
    confirm = _confirmation()


class PasswordChangeForm(FlaskForm):
    """`email`: the account's, which the new password may not be."""

    current_password = PasswordField("Current password", validators=[
        InputRequired("Enter your current password."), Length(max=MAX_LENGTH, message="This is not your current password."),
    ])
    password = PasswordField("New password", validators=[
        InputRequired("Choose a new password."), _StrongPassword(lambda form: form.account_email),
    ])
    confirm = _confirmation()

    def __init__(self, email: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.account_email = email
