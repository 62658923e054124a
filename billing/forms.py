"""Forms of the billing admin pages: report filters and the service-account entry form."""

from __future__ import annotations

from datetime import date, datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.models import Customer, HourPack, Package, ServiceHourEntry
from billing.money import hours_text
from billing.reports import CSV_TABLE_LABELS, CSV_TABLES


class MonthField(forms.CharField):
    """A month as ``YYYY-MM`` (the browser's month picker); cleaned to its first day."""

    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            return datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            raise forms.ValidationError(_("Enter a month as YYYY-MM."), code="month")


class ReportFilterForm(forms.Form):
    first_month = MonthField(label=_("from month"), required=False)
    last_month = MonthField(label=_("to month"), required=False)
    packages = forms.ModelMultipleChoiceField(
        label=_("packages"),
        required=False,
        to_field_name="code",
        queryset=Package.objects.order_by("rank"),
        widget=forms.CheckboxSelectMultiple,
    )


class CsvOptionsForm(forms.Form):
    table = forms.ChoiceField(
        label=_("table"), initial="volume", choices=[(table, CSV_TABLE_LABELS[table]) for table in CSV_TABLES]
    )
    separator = forms.ChoiceField(
        label=_("separator"),
        choices=[("semicolon", ";"), ("comma", ",")],
        initial="semicolon",
        required=False,
    )
    decimal = forms.ChoiceField(
        choices=[("comma", _("decimal comma")), ("point", _("decimal point"))],
        initial="comma",
        required=False,
    )
    bom = forms.BooleanField(required=False, initial=True, label=_("UTF-8 with BOM (for Excel)"))


class ServiceHourEntryForm(forms.ModelForm):
    """Log time spent, an hour pack bought or an adjustment; saved through the services."""

    ACTIONS = [
        (ServiceHourEntry.Kind.TIME_SPENT, _("log time spent")),
        (ServiceHourEntry.Kind.HOUR_PACK, _("hour pack bought")),
        (ServiceHourEntry.Kind.ADJUSTMENT, _("adjustment (+/-)")),
    ]
    kind = forms.ChoiceField(
        label=_("what happened"), choices=ACTIONS, initial=ServiceHourEntry.Kind.TIME_SPENT
    )
    hours = forms.DecimalField(
        label=_("hours"),
        max_digits=7,
        decimal_places=2,
        required=False,
        help_text=_(
            "Time spent: positive hours, drawn from the account. "
            "Adjustment: + or -. Hour pack: taken from the pack."
        ),
    )
    hour_pack = forms.ModelChoiceField(
        label=_("hour pack"), required=False, queryset=HourPack.objects.filter(is_active=True)
    )

    class Meta:
        model = ServiceHourEntry
        fields = [
            "customer",
            "kind",
            "occurred_at",
            "hours",
            "category",
            "hour_pack",
            "note",
            "below_zero_reason",
        ]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == ServiceHourEntry.Kind.HOUR_PACK and not data.get("hour_pack"):
            self.add_error("hour_pack", _("Choose the hour pack bought."))
        if kind == ServiceHourEntry.Kind.TIME_SPENT:
            if not data.get("hours") or data["hours"] <= 0:
                self.add_error("hours", _("Enter the hours spent (a positive number)."))
            if not data.get("category"):
                self.add_error("category", _("Say what the time was spent on."))
        if kind == ServiceHourEntry.Kind.ADJUSTMENT:
            if not data.get("hours"):
                self.add_error("hours", _("Enter the hours to add (+) or remove (-)."))
            if not (data.get("note") or "").strip():
                self.add_error("note", _("Say why the account is adjusted."))
        self._check_balance(data)
        return data

    def _check_balance(self, data) -> None:
        """Refuse going below zero without a reason here, for a friendly form error.

        The service checks again under a lock; this only spares support a failed save.
        """
        from billing.selectors import service_hours_balance

        customer, hours, kind = data.get("customer"), data.get("hours"), data.get("kind")
        if not customer or hours is None or kind == ServiceHourEntry.Kind.HOUR_PACK:
            return
        change = -hours if kind == ServiceHourEntry.Kind.TIME_SPENT else hours
        balance = service_hours_balance(customer=customer)
        if change < 0 and balance + change < 0 and not (data.get("below_zero_reason") or "").strip():
            self.add_error(
                "below_zero_reason",
                _(
                    "This takes the service account to %(after)s (balance %(balance)s): give a "
                    "reason to go below zero; the hours owed show on the statement."
                )
                % {"after": hours_text(balance + change), "balance": hours_text(balance)},
            )


def customers_for_user(user) -> "forms.QuerySet[Customer]":
    return Customer.objects.filter(users=user, is_active=True).order_by("name")


def parse_month(value: str | None) -> date | None:
    try:
        return MonthField().clean(value) if value else None
    except forms.ValidationError:
        return None
