from allauth.account.forms import LoginForm as AllauthLoginForm
from django import forms

from apps.accounts.models import Role
from apps.accounts.selectors import membership_get
from apps.tenants.errors import ApplicationError


def form_error(form: forms.Form, exc: ApplicationError) -> None:
    """Shows a service's refusal on the form: beside the field it names, else on top."""
    # "parameters.delay_ms" is shown beside the form's "parameters" field.
    field = str(exc.extra.get("field") or "").split(".", 1)[0]
    form.add_error(field if field in form.fields else None, exc.message)


class LoginForm(AllauthLoginForm):
    """allauth's login; on an organisation's site, only its members get in."""

    def clean(self) -> dict:
        cleaned = super().clean()
        organisation = getattr(self.request, "organisation", None)
        user = getattr(self, "user", None)
        if (
            organisation is not None
            and user is not None
            and membership_get(user=user, organisation=organisation) is None
        ):
            raise forms.ValidationError(
                f"This account is not a member of {organisation.name}. "
                "Ask an administrator for an invitation.",
                code="not_member",
            )
        return cleaned


class OrganisationForm(forms.Form):
    name = forms.CharField(max_length=120, label="Organisation name")
    slug = forms.SlugField(
        max_length=40,
        label="Address",
        help_text="Lowercase letters, digits and hyphens; your workspace's web address.",
    )


class InvitationForm(forms.Form):
    email = forms.CharField(max_length=254, label="Email address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.LEARNER)


class BulkInvitationForm(forms.Form):
    csv_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        label="Paste addresses",
        help_text="One per line: email, or email,role.",
    )
    csv_file = forms.FileField(required=False, label="…or upload a CSV file")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.LEARNER, label="Default role")


class InvitationLinkForm(forms.Form):
    role = forms.ChoiceField(
        choices=[(Role.LEARNER, "Learner"), (Role.INSTRUCTOR, "Instructor")],
        initial=Role.LEARNER,
    )
    expires_in_days = forms.IntegerField(initial=7, label="Expires after (days)")
    max_uses = forms.IntegerField(initial=50, label="Uses")
    allowed_domain = forms.CharField(required=False, label="Only addresses at (optional)")


class SettingsForm(forms.Form):
    name = forms.CharField(max_length=200, label="Organisation name")
    allowed_email_domains = forms.CharField(
        required=False,
        label="Allowed email domains",
        help_text="Space- or comma-separated, e.g. university.edu; empty admits any address.",
    )


class JoinForm(forms.Form):
    display_name = forms.CharField(max_length=120, required=False, label="Your name")
    password1 = forms.CharField(widget=forms.PasswordInput, label="Choose a password")
    password2 = forms.CharField(widget=forms.PasswordInput, label="Password again")

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return cleaned
