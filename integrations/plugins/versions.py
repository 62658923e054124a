"""A customer's plugin versions: made, switched on (the live one), rolled back, switched off.

Package 800 and up (``Feature.PLUGIN``): below it making a version or switching one on is
refused with the package's name, as the other gates are. A version is never edited: every
change is a new version with who and when, and rolling back is switching an earlier one on.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Customer, Feature
from billing.selectors import feature_refusal
from integrations.models import FlowSettings, PluginVersion
from integrations.plugins.code import CODE_PLUGINS
from integrations.plugins.rules import rules_problems
from integrations.rules import flow_switch_enabled


def live_plugin_version(*, settings: FlowSettings | None) -> PluginVersion | None:
    """The version that maps the customer's orders now: the live one, if the plugin switch is in
    effect (ticked, and allowed by the package)."""
    if settings is None or settings.live_plugin_id is None:
        return None
    if not flow_switch_enabled(settings=settings, name="plugins_enabled")[0]:
        return None
    return PluginVersion.objects.get(pk=settings.live_plugin_id)


def plugin_problems(*, customer: Customer, rules, code_plugins) -> list[str]:
    """Why these rules and code plugins cannot be a version for this customer ([] when they can)."""
    problems = []
    refusal = feature_refusal(customer=customer, feature=Feature.PLUGIN, what=_("Customer plugins"))
    if refusal:
        problems.append(refusal)
    if not isinstance(rules, list):
        problems.append(_("The rules must be a list."))
    else:
        problems += rules_problems(rules)
    unknown = [name for name in code_plugins or [] if name not in CODE_PLUGINS]
    if unknown:
        problems.append(_("No code plugin is called %(names)s.") % {"names": ", ".join(unknown)})
    return problems


def plugin_version_create(
    *, customer: Customer, rules: list, code_plugins: list[str], note: str, by: str
) -> PluginVersion:
    problems = plugin_problems(customer=customer, rules=rules, code_plugins=code_plugins)
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()  # numbers in turn
        last = PluginVersion.objects.filter(customer=customer).aggregate(n=Max("number"))["n"] or 0
        return PluginVersion.objects.create(
            customer=customer,
            number=last + 1,
            rules=rules,
            code_plugins=list(code_plugins),
            note=note,
            created_by=by,
        )


def plugin_version_switch_on(*, version: PluginVersion, by: str) -> None:
    """Make ``version`` the live one (also an earlier one: a rollback); the orders invoiced from now
    on are mapped with it."""
    refusal = feature_refusal(customer=version.customer, feature=Feature.PLUGIN, what=_("Customer plugins"))
    if refusal:
        raise ValidationError(refusal)
    with transaction.atomic():
        settings, _created = FlowSettings.objects.get_or_create(customer=version.customer)
        FlowSettings.objects.filter(pk=settings.pk).update(live_plugin=version, plugins_enabled=True)
        PluginVersion.objects.filter(pk=version.pk).update(switched_on_at=timezone.now(), switched_on_by=by)


def plugins_switch_off(*, customer: Customer) -> None:
    """Back to the standard mapping; the versions stay, to switch one on again."""
    FlowSettings.objects.filter(customer=customer).update(live_plugin=None)
