"""The parameter row form shared by projects and tasks: sensitive values are write-only."""

from __future__ import annotations

from django import forms

from connections.forms import KEEP_HINT
from projects.parameters import ParameterError, parse_lines


class ParameterForm(forms.ModelForm):
    entered_value = forms.CharField(
        label="Value", required=False, strip=False, widget=forms.TextInput(attrs={"size": 40}),
        help_text="Bound as text to SQL placeholders, inserted as written elsewhere; parse(%Y-%m-%d-1) gives a date.",
    )

    class Meta:
        fields = ["key", "entered_value", "sensitive", "position"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A value typed as sensitive must not come back in the page when the
        # form is shown again with errors.
        typed_sensitive = self.is_bound and self.data.get(self.add_prefix("sensitive")) in ("on", "true", "1", True)
        if self.instance.pk and self.instance.sensitive:
            self.fields["entered_value"].widget = forms.PasswordInput(render_value=False, attrs={"placeholder": "unchanged"})
            self.fields["entered_value"].help_text = KEEP_HINT
        elif typed_sensitive:
            self.fields["entered_value"].widget = forms.PasswordInput(render_value=False, attrs={"placeholder": "type it again"})
        else:
            self.initial["entered_value"] = self.instance.value

    def clean_key(self):
        key = self.cleaned_data["key"].strip()
        if not key or any(c in key for c in "=:\n"):
            raise forms.ValidationError("A key may not be empty or contain “=”, “:” or a line break.")
        return key

    def _post_clean(self):
        entered = self.cleaned_data.get("entered_value", "")
        sensitive = self.cleaned_data.get("sensitive", False)
        keep_secret = self.instance.pk and self.instance.sensitive and sensitive and not entered
        if not keep_secret:
            self.instance.set_value(entered, sensitive)
        super()._post_clean()


class ParameterLinesForm(forms.ModelForm):
    """Adds a box where parameters can be pasted as `key=value` / `key:value` lines."""

    parameter_lines = forms.CharField(
        label="Add parameters as lines", required=False, strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "@day=parse(%Y-%m-%d-1)\nclient:acme"}),
        help_text="One per line, key=value or key:value (the first = or : separates). "
        "A key that exists is updated; these values are not sensitive — mark sensitive ones in the parameter rows.",
    )

    def clean_parameter_lines(self):
        try:
            return parse_lines(self.cleaned_data["parameter_lines"])
        except ParameterError as exc:
            raise forms.ValidationError(str(exc)) from None


def save_parameter_lines(form: forms.Form, manager) -> None:
    """Create or update the owner's parameters from the pasted lines (key match ignores case)."""
    existing = {p.key.casefold(): p for p in manager.all()}
    position = max((p.position for p in existing.values()), default=-1)
    for param in form.cleaned_data.get("parameter_lines") or []:
        row = existing.get(param.key.casefold())
        if row is None:
            position += 1
            row = manager.model(key=param.key, position=position, **{manager.field.name: manager.instance})
        row.set_value(param.value, sensitive=False)
        row.save()
