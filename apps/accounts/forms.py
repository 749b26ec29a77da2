from django import forms
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts.models import User
from apps.accounts.selectors import membership_get


class OrganisationLoginForm(AuthenticationForm):
    """Logs in with email and password; on an organisation's site, only its members."""

    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))

    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        organisation = getattr(self.request, "organisation", None)
        if (
            organisation is not None
            and membership_get(user=user, organisation=organisation) is None
        ):
            raise forms.ValidationError(
                "This account is not a member of %(org)s. Ask an administrator for an invitation.",
                code="not_member",
                params={"org": organisation.name},
            )
