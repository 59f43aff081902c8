"""Admin forms whose secret fields are write-only: never rendered back, blank keeps the stored value."""

from __future__ import annotations

from django import forms
from django.utils.text import capfirst

from connections.clients.gpg import GpgError, inspect_key
from connections.kinds import KINDS
from connections.models import Connection, GpgKey
from connections.secrets import SecretField

KEEP_HINT = "Stored encrypted and never shown. Leave blank to keep the current value."


def secret_field_names(model) -> list[str]:
    return [f.name for f in model._meta.get_fields() if isinstance(f, SecretField)]


class SecretTextarea(forms.Textarea):
    """A textarea that, like PasswordInput(render_value=False), never renders a value, not even one just typed."""

    def format_value(self, value):
        return None


class SecretFieldsMixin:
    """Gives each SecretField the form edits a write-only input and a “clear” box."""

    multiline_secrets = ("private_key", "odbc")

    def secret_names(self) -> list[str]:
        # None: the form takes every field of the model.
        wanted = self._meta.fields
        return [name for name in secret_field_names(self._meta.model) if wanted is None or name in wanted]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_names():
            model_field = self._meta.model._meta.get_field(name)
            has_value = bool(self.instance.pk and self.instance.__dict__.get(name))
            widget = (
                SecretTextarea(attrs={"rows": 3, "autocomplete": "off", "placeholder": "unchanged" if has_value else ""})
                if name in self.multiline_secrets
                else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "placeholder": "unchanged" if has_value else ""})
            )
            self.fields[name] = forms.CharField(
                label=capfirst(model_field.verbose_name), required=False, strip=False, widget=widget,
                help_text=f"{model_field.help_text} {KEEP_HINT if has_value else ''}".strip(),
            )
            if has_value:
                self.fields[f"clear_{name}"] = forms.BooleanField(label=f"Clear the stored {model_field.verbose_name}", required=False)

    def _post_clean(self):
        # Out of cleaned_data while the instance is built, which would store a blank as “clear it”.
        typed = {name: self.cleaned_data.pop(name, "") for name in self.secret_names()}
        for name, value in typed.items():
            if value:
                setattr(self.instance, name, value.strip() if name in self.multiline_secrets else value)
            elif self.cleaned_data.get(f"clear_{name}"):
                setattr(self.instance, name, "")
        super()._post_clean()
        self.cleaned_data.update(typed)


class ConnectionForm(SecretFieldsMixin, forms.ModelForm):
    """The admin builds it with the fields of one kind (ConnectionAdmin.get_form)."""

    class Meta:
        model = Connection
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kind = KINDS.get(self.initial.get("kind") or self.instance.kind)
        if kind and kind.default_port and "port" in self.fields:
            self.fields["port"].widget.attrs["placeholder"] = str(kind.default_port)


class GpgKeyForm(forms.ModelForm):
    class Meta:
        model = GpgKey
        fields = ["name", "public_key"]

    def clean_public_key(self):
        text = self.cleaned_data["public_key"].strip()
        try:
            self.key_info = inspect_key(text)
        except GpgError as exc:
            raise forms.ValidationError(str(exc)) from None
        return text + "\n"

    def save(self, commit=True):
        info = self.key_info
        self.instance.fingerprint, self.instance.user_ids, self.instance.expires_at = info.fingerprint, "\n".join(info.user_ids), info.expires_at
        return super().save(commit)
