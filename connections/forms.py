"""Admin forms whose secret fields are write-only: never rendered back, blank keeps the stored value."""

from __future__ import annotations

from django import forms

from connections.clients.gpg import GpgError, inspect_key
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
    """Adds a write-only input and a “clear” box for each SecretField of the model."""

    multiline_secrets = ("private_key", "odbc")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in secret_field_names(self._meta.model):
            model_field = self._meta.model._meta.get_field(name)
            has_value = bool(self.instance.pk and self.instance.__dict__.get(name))
            widget = (
                SecretTextarea(attrs={"rows": 3, "autocomplete": "off", "placeholder": "unchanged" if has_value else ""})
                if name in self.multiline_secrets
                else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "placeholder": "unchanged" if has_value else ""})
            )
            self.fields[name] = forms.CharField(
                label=model_field.verbose_name.capitalize(), required=False, strip=False, widget=widget,
                help_text=f"{model_field.help_text} {KEEP_HINT if has_value else ''}".strip(),
            )
            if has_value:
                self.fields[f"clear_{name}"] = forms.BooleanField(label=f"Clear the stored {model_field.verbose_name}", required=False)

    def _post_clean(self):
        for name in secret_field_names(self._meta.model):
            value = self.cleaned_data.get(name)
            if value:
                setattr(self.instance, name, value.strip() if name in self.multiline_secrets else value)
            elif self.cleaned_data.get(f"clear_{name}"):
                setattr(self.instance, name, "")
        super()._post_clean()


class ConnectionForm(SecretFieldsMixin, forms.ModelForm):
    class Meta:
        model = Connection
        fields = "__all__"


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
