"""The parameter row form shared by projects and tasks: sensitive values are write-only."""

from __future__ import annotations

from django import forms

from connections.forms import KEEP_HINT


class ParameterForm(forms.ModelForm):
    entered_value = forms.CharField(
        label="Value", required=False, strip=False, widget=forms.TextInput(attrs={"size": 40}),
        help_text="Inserted as written; parse(%Y-%m-%d-1) gives a date.",
    )

    class Meta:
        fields = ["key", "entered_value", "sensitive", "position"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.sensitive:
            self.fields["entered_value"].widget = forms.PasswordInput(render_value=False, attrs={"placeholder": "unchanged"})
            self.fields["entered_value"].help_text = KEEP_HINT
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
