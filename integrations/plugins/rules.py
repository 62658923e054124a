"""Customer plugin rules: declared changes to the standard order -> invoice mapping.

Support declares a customer's rules in the admin as JSON (a list of dicts, stored as is);
the order flow builds the invoice body with ``hogia_invoice_body``, sets its own fields,
then calls ``rules_apply``. Pure functions on the parsed order and the body: no database,
no network.

Design:

* **Texts, never amounts.** A rule may set references, terms, a note, line descriptions,
  article numbers and units, add text lines (no quantity, price or VAT), and hand contact
  and article fields to the caller. It may never set amounts, quantities, VAT, currency,
  the customer, the dates or ``useRounding``: ``mapping.invoices`` made the invoice equal
  the order to the öre, and a rule could not keep that promise. The one exception is
  ``line.skip``, which drops a line the customer does not want invoiced; the caller must
  check the totals again after a rule skipped a line.
* **Refused whole or applied whole.** ``rules_problems`` lists every problem in a
  definition in words for support; ``rules_apply`` raises ``RuleError`` for invalid rules
  instead of applying some of them.
* **A rule never crashes an order.** A value that is missing reads as ""; a date or number
  that does not parse is left as it is; an empty result leaves its target unchanged (a
  checkout field the buyer left empty must not blank the invoice's reference).
* **Cheap.** A dry run applies tens of rules to hundreds of orders: the rules are checked
  and turned into closures once per rule list (kept for the next call), regexes are compiled
  once per pattern, the order is only read, and only the invoice dict and the lines a rule
  changes are copied.

A rule (keys other than these are a problem; ``comment`` is free text for support)::

    {"name": "Org number to our reference",           # required, unique
     "scope": "order",                                 # order (default) | items | fees | shipping | lines
     "when": [{"source": "meta:_billing_org_no", "op": "present"}],   # optional, all must hold
     "source": "meta:_billing_org_no",                 # optional if the first transform is fixed or concat
     "transforms": [{"regex_extract": "(\\\\d{6})-?(\\\\d{4})", "group": 0}],
     "target": "invoice.yourReference",
     "comment": "Asked for by the customer, ticket 1234"}

Sources (read as text: numbers via ``str``, true/false, None and lists/objects as ""):
``order.<field>``, ``billing.<field>``, ``shipping.<field>``, ``meta:<key>`` (the order's
first ``meta_data`` entry with that key), ``coupon.codes`` (", "-joined), ``invoice.<field>``
(the invoice as earlier rules left it) and, in line scopes only, ``line.<field>`` and
``line.meta:<key>`` (the WooCommerce item, fee or shipping line the invoice line came
from) and ``invoice_line.<field>`` (the invoice line as earlier rules left it).

Conditions (``op``): present, absent (blank = "" after stripping spaces), equals,
not_equals, contains (text ``value``), matches (``value`` a regex, searched), in
(``value`` a list of texts). Comparisons are exact and case-sensitive.

Transforms, in order, each a dict with one kind and its options: ``fixed``, ``lookup``
(+ ``default``), ``concat`` (``{path}`` placeholders, ``{value}`` the current value),
``regex_extract`` (+ ``group``, default 1 if the pattern has a group, else 0),
``regex_replace`` (+ ``with``), ``date_format``, ``number_format`` (``decimals`` 0-6,
``decimal_sep``, ``thousands_sep``; half up), ``upper``, ``lower``, ``strip`` (true),
``truncate`` (characters), ``when_empty`` (text used when the value is blank).

Targets: ``invoice.<field>`` for the fields in ``INVOICE_FIELDS`` and ``contact.<field>``
(``CONTACT_FIELDS``) in any scope; ``text_line`` in the order scope; ``line.<field>``
(``LINE_FIELDS``) and ``line.skip`` in line scopes; ``article.<field>``
(``ARTICLE_FIELDS``) in the items scope, keyed by the invoice line's article number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Callable

from django.utils.translation import gettext as _

from integrations.mapping.invoices import FEE, ITEM, LINE_ROUNDING, SHIPPING

MAX_RULES = 200
TEXT = "text"  # the kind of a text line a rule appended

# scope -> the kinds of invoice line it runs on; () runs once for the order. Discount and
# rounding lines are in no scope: they carry the VAT balance the mapping worked out.
SCOPES: dict[str, tuple[str, ...]] = {
    "order": (),
    "items": (ITEM,),
    "fees": (FEE,),
    "shipping": (SHIPPING,),
    "lines": (ITEM, FEE, SHIPPING),
}
# Only the invoice head's texts Hogia Smart's contract has (../shared/docs/hogia-smart-api.md); the
# portal finds its invoices again by the reference and the order number as posted, rules and all.
INVOICE_FIELDS = ("yourReference", "ourReference", "customerOrderNumber")
LINE_FIELDS = ("description", "articleNumber", "unitType")
# What a new Hogia Smart contact takes (``integrations.plugins.apply.CONTACT_BODY_KEYS``).
CONTACT_FIELDS = ("organisationNumber", "name", "email", "phone")
ARTICLE_FIELDS = ("name", "unit", "description", "ean")
RULE_KEYS = ("name", "scope", "when", "source", "transforms", "target", "comment")
CONDITION_OPS = ("present", "absent", "equals", "not_equals", "contains", "matches", "in")
# transform kind -> the options it takes besides its own key
TRANSFORM_OPTIONS: dict[str, tuple[str, ...]] = {
    "fixed": (),
    "lookup": ("default",),
    "concat": (),
    "regex_extract": ("group",),
    "regex_replace": ("with",),
    "date_format": (),
    "number_format": (),
    "upper": (),
    "lower": (),
    "strip": (),
    "truncate": (),
    "when_empty": (),
}
NUMBER_FORMAT_KEYS = ("decimals", "decimal_sep", "thousands_sep")
# Values of line.skip that mean "keep": what a lookup or a checkbox meta writes for no.
KEEP_WORDS = ("", "0", "false", "no")

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_LINE_ROOTS = ("line", "line_meta", "invoice_line")
_LINE_SCOPES_WORDS = "items, fees, shipping or lines"
# Quantize needs room for the digits; a number beyond it is left as it is, not an error.
_DECIMALS = Context(prec=40, traps=[InvalidOperation])


@dataclass
class LineOrigin:
    """Where one invoice line comes from; one per line, in the same order as the lines."""

    kind: str  # item | shipping | fee | discount | rounding | line_rounding (| text)
    source_id: int | None  # the WooCommerce id of the order line it comes from


@dataclass
class Applied:
    """What the rules made of an invoice body. The inputs are left as they were.

    ``invoice`` is a new dict (its nested currency and dimensions are the input's, which no
    rule can change); ``lines`` a new list in which only the lines a rule changed are new
    dicts, skipped lines are gone and text lines are appended; ``origins`` stays in step.
    """

    invoice: dict
    lines: list[dict]
    origins: list[LineOrigin]
    contact: dict = field(default_factory=dict)  # contact field -> value
    articles: dict[str, dict] = field(default_factory=dict)  # article number -> {field: value}
    fired: list[str] = field(default_factory=list)  # names of the rules that changed something
    skipped_lines: list[int] = field(default_factory=list)  # indexes in the input lines


class RuleError(ValueError):
    """The rules cannot be applied; ``problems`` says why, in words for support."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


def rules_problems(rules: list[dict]) -> list[str]:
    """Every problem in these rule definitions, one short sentence each; [] when they are valid."""
    return _rules_compiled(rules)[0]


def rules_apply(
    rules: list[dict], *, order: dict, invoice: dict, lines: list[dict], origins: list[LineOrigin]
) -> Applied:
    """Apply the rules, in list order, to an invoice body built from ``order``.

    A later rule sees what earlier ones wrote (``invoice.*``, ``invoice_line.*``). An empty
    result leaves an invoice, line, contact or article target unchanged, so that a checkout
    field the buyer left empty never blanks a reference; for ``text_line`` it appends
    nothing and for ``line.skip`` it keeps the line. Skipping an item also drops its
    öre correction line (``line_rounding``). Raises ``RuleError`` when the rules are invalid
    (see ``rules_problems``); never for what is in the order.
    """
    compiled = _rules_ready(rules)
    if len(origins) != len(lines):
        raise ValueError(f"{len(origins)} origins for {len(lines)} lines: give one origin per invoice line")
    run = _Run(order=order, invoice=dict(invoice), lines=lines, origins=origins)
    for rule in compiled:
        if rule.run(run):
            run.fired.append(rule.name)
    kept = [work for work in run.work if not work.skipped]
    return Applied(
        invoice=run.invoice,
        lines=[work.body for work in kept] + [{"description": text} for text in run.text_lines],
        origins=[work.origin for work in kept] + [LineOrigin(TEXT, None) for _line in run.text_lines],
        contact=run.contact,
        articles=run.articles,
        fired=run.fired,
        skipped_lines=[work.index for work in run.work if work.skipped],
    )


# -- running -----------------------------------------------------------------------------------


class _WorkLine:
    """One invoice line while the rules run; its dict is copied on the first change only."""

    __slots__ = ("index", "body", "origin", "skipped", "copied")

    def __init__(self, index: int, body: dict, origin: LineOrigin):
        self.index, self.body, self.origin = index, body, origin
        self.skipped = self.copied = False

    def set(self, name: str, value: str) -> bool:
        if self.body.get(name) == value:
            return False
        if not self.copied:
            self.body, self.copied = dict(self.body), True
        self.body[name] = value
        return True


class _Run:
    """The state of one ``rules_apply`` call, and the reading of sources from it."""

    def __init__(self, *, order: dict, invoice: dict, lines: list[dict], origins: list[LineOrigin]):
        self.order = order if isinstance(order, dict) else {}
        self.invoice = invoice
        self.work = [_WorkLine(i, body, origin) for i, (body, origin) in enumerate(zip(lines, origins))]
        self.text_lines: list[str] = []
        self.contact: dict = {}
        self.articles: dict[str, dict] = {}
        self.fired: list[str] = []
        self._meta: dict | None = None
        self._coupons: str | None = None
        self._order_lines: dict[str, dict] | None = None

    def read(self, source: tuple[str, str], line: _WorkLine | None) -> str:
        root, name = source
        if root == "order":
            return _text(self.order.get(name))
        if root in ("billing", "shipping"):
            address = self.order.get(root)
            return _text(address.get(name)) if isinstance(address, dict) else ""
        if root == "meta":
            if self._meta is None:
                self._meta = _meta_index(self.order.get("meta_data"))
            return _text(self._meta.get(name))
        if root == "coupon":
            if self._coupons is None:
                self._coupons = ", ".join(
                    _text(c.get("code"))
                    for c in self.order.get("coupon_lines") or []
                    if isinstance(c, dict) and _text(c.get("code"))
                )
            return self._coupons
        if root == "invoice":
            return _text(self.invoice.get(name))
        if line is None:  # a line source outside a line scope is refused before the run
            return ""
        if root == "invoice_line":
            return _text(line.body.get(name))
        order_line = self._order_line(line.origin)
        if root == "line":
            return _text(order_line.get(name))
        return _text(_meta_index(order_line.get("meta_data")).get(name))  # line_meta

    def _order_line(self, origin: LineOrigin) -> dict:
        if self._order_lines is None:
            self._order_lines = {}
            for kind, key in ((ITEM, "line_items"), (FEE, "fee_lines"), (SHIPPING, "shipping_lines")):
                for entry in self.order.get(key) or []:
                    if isinstance(entry, dict):
                        self._order_lines.setdefault(f"{kind}:{entry.get('id')}", entry)
        if origin.source_id is None:
            return {}
        return self._order_lines.get(f"{origin.kind}:{origin.source_id}", {})

    def skip(self, line: _WorkLine) -> bool:
        if line.skipped:
            return False
        line.skipped = True
        if line.origin.source_id is not None:
            # The öre correction of an item's unit price means nothing without the item.
            for other in self.work:
                if other.origin.kind == LINE_ROUNDING and other.origin.source_id == line.origin.source_id:
                    other.skipped = True
        return True


def _meta_index(entries: object) -> dict:
    """``meta_data`` as key -> value; the first entry of a key wins, as WooCommerce's get_meta."""
    index: dict = {}
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            index.setdefault(entry["key"], entry.get("value"))
    return index


def _text(value: object) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _blank(value: str) -> bool:
    return not value.strip()


Transform = Callable[[str, "_Run", "_WorkLine | None"], str]
Condition = Callable[["_Run", "_WorkLine | None"], bool]


@dataclass
class _Rule:
    """A checked rule, ready to run: conditions and transforms as closures."""

    name: str
    kinds: tuple[str, ...]
    conditions: list[Condition]
    source: tuple[str, str] | None
    transforms: list[Transform]
    target: tuple[str, str]

    def run(self, run: _Run) -> bool:
        """Whether the rule changed something."""
        if not self.kinds:
            return self._once(run, None)
        changed = False
        for line in run.work:
            if not line.skipped and line.origin.kind in self.kinds:
                changed = self._once(run, line) or changed
        return changed

    def _once(self, run: _Run, line: _WorkLine | None) -> bool:
        for condition in self.conditions:
            if not condition(run, line):
                return False
        value = run.read(self.source, line) if self.source else ""
        for transform in self.transforms:
            value = transform(value, run, line)
        where, name = self.target
        if where == "skip":
            return value.strip().lower() not in KEEP_WORDS and run.skip(line)
        if _blank(value):
            return False
        if where == "text_line":
            run.text_lines.append(value)
            return True
        if where == "invoice":
            if run.invoice.get(name) == value:
                return False
            run.invoice[name] = value
            return True
        if where == "line":
            return line.set(name, value)
        if where == "contact":
            if run.contact.get(name) == value:
                return False
            run.contact[name] = value
            return True
        # article: keyed by the article the invoice line now books, the SKU unless a rule changed it
        number = _text(line.body.get("articleNumber"))
        if not number or run.articles.get(number, {}).get(name) == value:
            return False
        run.articles.setdefault(number, {})[name] = value
        return True


# -- checking and compiling --------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern)


@lru_cache(maxsize=1024)
def _source_shape(path: str) -> tuple[str, str] | None:
    """``(root, field)`` of a source path, or None when its shape is unknown."""
    for prefix, root in (("meta:", "meta"), ("line.meta:", "line_meta")):
        if path.startswith(prefix):
            key = path[len(prefix) :]
            return (root, key) if key.strip() else None
    if path == "coupon.codes":
        return ("coupon", "codes")
    root, dot, name = path.partition(".")
    if (
        dot
        and root in ("order", "billing", "shipping", "invoice", "line", "invoice_line")
        and _FIELD.match(name)
    ):
        return (root, name)
    return None


class _Checker:
    """Collects the problems of one rule, each naming the rule."""

    def __init__(self, rule: object, position: int, problems: list[str]):
        self.rule, self.position, self.problems = rule, position, problems
        self.line_scope = True  # until the scope is known: a line source is then not held against it

    def problem(self, message: str, **values: object) -> None:
        # The label is made only for a problem: valid rules cost no translation lookups.
        self.problems.append(message % {"rule": _rule_label(self.rule, self.position), **values})

    def source(self, path: object) -> tuple[str, str] | None:
        shape = _source_shape(path) if isinstance(path, str) else None
        if shape is None:
            self.problem(_('%(rule)s: unknown source "%(source)s".'), source=path)
            return None
        if shape[0] in _LINE_ROOTS and not self.line_scope:
            self.problem(
                _('%(rule)s: "%(source)s" can only be read in the scope %(scopes)s.'),
                source=path,
                scopes=_LINE_SCOPES_WORDS,
            )
            return None
        return shape

    def regex(self, pattern: object) -> re.Pattern | None:
        if not isinstance(pattern, str):
            self.problem(_("%(rule)s: a regular expression must be text."))
            return None
        try:
            return _regex(pattern)
        except re.error as error:
            self.problem(
                _('%(rule)s: "%(pattern)s" is not a valid regular expression (%(error)s).'),
                pattern=pattern,
                error=error,
            )
            return None


def _rule_label(rule: object, position: int) -> str:
    name = rule.get("name") if isinstance(rule, dict) else None
    if isinstance(name, str) and name.strip():
        return _('Rule "%(name)s"') % {"name": name.strip()}
    return _("Rule %(number)d") % {"number": position}


# Valid rule lists already compiled, by their repr: a dry run applies the same rules to hundreds
# of orders. repr, not JSON, so that 1 and "1" or a tuple and a list never share an entry.
_READY: dict[str, list[_Rule]] = {}
_READY_MAX = 64


def _rules_ready(rules: list[dict]) -> list[_Rule]:
    """The rules compiled (the closures hold no state of a run, so they are shared), or RuleError."""
    key = repr(rules)
    compiled = _READY.get(key)
    if compiled is None:
        problems, compiled = _rules_compiled(rules)
        if problems:
            raise RuleError(problems)  # not kept: problems are words in the language of the moment
        if len(_READY) >= _READY_MAX:
            _READY.clear()  # one atomic step, safe between threads; the next calls compile again
        _READY[key] = compiled
    return compiled


def _rules_compiled(rules: object) -> tuple[list[str], list[_Rule]]:
    """The problems of these definitions and, when there are none, the rules ready to run."""
    if not isinstance(rules, list):
        return [_("The rules must be a list.")], []
    problems: list[str] = []
    if len(rules) > MAX_RULES:
        problems.append(
            _("At most %(max)d rules are allowed; there are %(count)d.")
            % {"max": MAX_RULES, "count": len(rules)}
        )
    compiled = []
    names: set[str] = set()
    for position, rule in enumerate(rules, start=1):
        check = _Checker(rule, position, problems)
        if not isinstance(rule, dict):
            check.problem(_("%(rule)s must be an object with a name, a source and a target."))
            continue
        one = _rule_compiled(check, rule, names)
        if one is not None:
            compiled.append(one)
    return problems, ([] if problems else compiled)


def _rule_compiled(check: _Checker, rule: dict, names: set[str]) -> _Rule | None:
    before = len(check.problems)
    for key in rule:
        if key not in RULE_KEYS:
            check.problem(_('%(rule)s: unknown key "%(key)s".'), key=key)
    name = rule.get("name")
    if not isinstance(name, str) or not name.strip():
        check.problem(_("%(rule)s has no name."))
    elif name.strip() in names:
        check.problem(_("%(rule)s: another rule has the same name."))
    else:
        names.add(name.strip())
    scope = rule.get("scope", "order")
    target = None
    if isinstance(scope, str) and scope in SCOPES:
        check.line_scope = bool(SCOPES[scope])
        target = _target(check, rule.get("target"), scope)
    else:
        check.problem(
            _('%(rule)s: unknown scope "%(scope)s" (order, items, fees, shipping or lines).'), scope=scope
        )
    conditions = _conditions(check, rule.get("when", []))
    transforms_given = rule.get("transforms", [])
    if not isinstance(transforms_given, list):
        check.problem(_('%(rule)s: "transforms" must be a list.'))
        transforms_given = []
    source = None
    if "source" in rule:
        source = check.source(rule["source"])
    elif not (
        transforms_given
        and isinstance(transforms_given[0], dict)
        and ("fixed" in transforms_given[0] or "concat" in transforms_given[0])
    ):
        check.problem(
            _("%(rule)s has no source (only a rule that starts with fixed or concat can do without).")
        )
    transforms = [_transform(check, given, number) for number, given in enumerate(transforms_given, start=1)]
    if len(check.problems) > before:
        return None
    return _Rule(
        name=name.strip(),
        kinds=SCOPES[scope],
        conditions=conditions,
        source=source,
        transforms=transforms,
        target=target,
    )


def _target(check: _Checker, target: object, scope: str) -> tuple[str, str] | None:
    if not isinstance(target, str) or not target.strip():
        check.problem(_("%(rule)s has no target."))
        return None
    where, _dot, name = target.partition(".")
    line_scope = bool(SCOPES[scope])
    if where == "invoice":
        if name in INVOICE_FIELDS:
            return ("invoice", name)
        check.problem(
            _(
                '%(rule)s: a rule cannot set "%(target)s"; amounts, currency, customer, dates and '
                "rounding stay as the mapping made them (allowed: %(allowed)s)."
            ),
            target=target,
            allowed=", ".join("invoice." + f for f in INVOICE_FIELDS),
        )
    elif where == "contact" and name in CONTACT_FIELDS:
        return ("contact", name)
    elif target == "text_line":
        if scope == "order":
            return ("text_line", "")
        check.problem(_('%(rule)s: "text_line" needs the scope order.'))
    elif where == "line" and (name in LINE_FIELDS or name == "skip"):
        if line_scope:
            return ("skip", "") if name == "skip" else ("line", name)
        check.problem(
            _('%(rule)s: "%(target)s" needs the scope %(scopes)s.'), target=target, scopes=_LINE_SCOPES_WORDS
        )
    elif where == "line":
        check.problem(
            _(
                '%(rule)s: a rule cannot set "%(target)s"; quantities, prices and VAT stay as the '
                "mapping made them (allowed: %(allowed)s)."
            ),
            target=target,
            allowed=", ".join("line." + f for f in (*LINE_FIELDS, "skip")),
        )
    elif where == "article" and name in ARTICLE_FIELDS:
        if scope == "items":
            return ("article", name)
        check.problem(_('%(rule)s: "%(target)s" needs the scope items.'), target=target)
    else:
        check.problem(_('%(rule)s: unknown target "%(target)s".'), target=target)
    return None


def _conditions(check: _Checker, given: object) -> list[Condition]:
    if not isinstance(given, list):
        check.problem(_('%(rule)s: "when" must be a list of conditions.'))
        return []
    conditions = []
    for number, condition in enumerate(given, start=1):
        if not isinstance(condition, dict):
            check.problem(
                _("%(rule)s: condition %(number)d must be an object with a source and an op."), number=number
            )
            continue
        for key in condition:
            if key not in ("source", "op", "value"):
                check.problem(
                    _('%(rule)s: condition %(number)d has an unknown key "%(key)s".'), number=number, key=key
                )
        source = check.source(condition.get("source"))
        op = condition.get("op")
        if op not in CONDITION_OPS:
            check.problem(
                _('%(rule)s: unknown condition "%(op)s" (%(ops)s).'), op=op, ops=", ".join(CONDITION_OPS)
            )
            continue
        has_value, value = "value" in condition, condition.get("value")
        if op in ("present", "absent"):
            if has_value:
                check.problem(_('%(rule)s: condition "%(op)s" takes no value.'), op=op)
        elif op == "in":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                check.problem(_('%(rule)s: condition "in" needs a list of texts as value.'))
                continue
        elif not isinstance(value, str):
            check.problem(_('%(rule)s: condition "%(op)s" needs a text as value.'), op=op)
            continue
        pattern = check.regex(value) if op == "matches" else None
        if source is not None and (op != "matches" or pattern is not None):
            conditions.append(_condition(source, op, value, pattern))
    return conditions


def _condition(source: tuple[str, str], op: str, value: object, pattern: re.Pattern | None) -> Condition:
    if op == "present":
        return lambda run, line: not _blank(run.read(source, line))
    if op == "absent":
        return lambda run, line: _blank(run.read(source, line))
    if op == "equals":
        return lambda run, line: run.read(source, line) == value
    if op == "not_equals":
        return lambda run, line: run.read(source, line) != value
    if op == "contains":
        return lambda run, line: value in run.read(source, line)
    if op == "matches":
        return lambda run, line: pattern.search(run.read(source, line)) is not None
    choices = frozenset(value)
    return lambda run, line: run.read(source, line) in choices


def _transform(check: _Checker, given: object, number: int) -> Transform | None:
    kinds = [key for key in given if key in TRANSFORM_OPTIONS] if isinstance(given, dict) else []
    if len(kinds) != 1:
        check.problem(
            _("%(rule)s: transform %(number)d must name one kind (%(kinds)s)."),
            number=number,
            kinds=", ".join(TRANSFORM_OPTIONS),
        )
        return None
    kind = kinds[0]
    arg = given[kind]
    for option in given:
        if option != kind and option not in TRANSFORM_OPTIONS[kind]:
            check.problem(
                _('%(rule)s: transform "%(kind)s" has no option "%(option)s".'), kind=kind, option=option
            )
    before = len(check.problems)
    made = _TRANSFORMS[kind](check, arg, given)
    return made if len(check.problems) == before else None


def _needs_text(check: _Checker, kind: str, arg: object) -> bool:
    if isinstance(arg, str):
        return True
    check.problem(_('%(rule)s: "%(kind)s" needs a text.'), kind=kind)
    return False


def _fixed(check: _Checker, arg: object, given: dict) -> Transform | None:
    if not _needs_text(check, "fixed", arg):
        return None
    return lambda value, run, line: arg


def _lookup(check: _Checker, arg: object, given: dict) -> Transform | None:
    if not isinstance(arg, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in arg.items()
    ):
        check.problem(_('%(rule)s: "lookup" needs a table of texts, such as {"SE-1": "1001"}.'))
        return None
    table = dict(arg)
    if "default" not in given:
        return lambda value, run, line: table.get(value, value)
    default = given["default"]
    if not _needs_text(check, "default", default):
        return None
    return lambda value, run, line: table.get(value, default)


def _concat(check: _Checker, arg: object, given: dict) -> Transform | None:
    if not isinstance(arg, list) or not arg or not all(isinstance(part, str) for part in arg):
        check.problem(_('%(rule)s: "concat" needs a list of texts.'))
        return None
    # Each part becomes pieces: a literal text, None for {value}, or a source to read.
    pieces: list[str | tuple[str, str] | None] = []
    for part in arg:
        at = 0
        for match in _PLACEHOLDER.finditer(part):
            pieces.append(part[at : match.start()])
            path = match.group(1).strip()
            pieces.append(None if path == "value" else check.source(path))
            at = match.end()
        pieces.append(part[at:])
    pieces = [piece for piece in pieces if piece != ""]

    def concat(value: str, run: _Run, line: _WorkLine | None) -> str:
        return "".join(
            value if piece is None else piece if isinstance(piece, str) else run.read(piece, line)
            for piece in pieces
        )

    return concat


def _regex_extract(check: _Checker, arg: object, given: dict) -> Transform | None:
    pattern = check.regex(arg)
    if pattern is None:
        return None
    group = given.get("group", 1 if pattern.groups else 0)
    if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group <= pattern.groups:
        check.problem(
            _('%(rule)s: "group" must be a whole number from 0 to %(groups)d (the groups in the pattern).'),
            groups=pattern.groups,
        )
        return None

    def extract(value: str, run: _Run, line: _WorkLine | None) -> str:
        match = pattern.search(value)
        return (match.group(group) or "") if match else ""

    return extract


def _regex_replace(check: _Checker, arg: object, given: dict) -> Transform | None:
    pattern = check.regex(arg)
    replacement = given.get("with", "")
    if pattern is None or not _needs_text(check, "with", replacement):
        return None
    try:
        pattern.sub(replacement, "")  # compiles the replacement: a bad group reference fails here
    except re.error as error:
        check.problem(
            _('%(rule)s: the replacement "%(with)s" is not valid (%(error)s).'),
            error=error,
            **{"with": replacement},
        )
        return None
    return lambda value, run, line: pattern.sub(replacement, value)


def _date_format(check: _Checker, arg: object, given: dict) -> Transform | None:
    if not isinstance(arg, str) or not arg:
        check.problem(_('%(rule)s: "date_format" needs a format such as "%%Y-%%m-%%d".'))
        return None
    try:
        shown = datetime(2026, 1, 31, 12, 30).strftime(arg)
    except ValueError:  # a lone surrogate; glibc itself refuses nothing
        shown = arg
    if shown == arg:  # "YYYY-MM-DD" would print itself on every invoice
        check.problem(
            _('%(rule)s: "%(format)s" is not a date format (use codes such as %%Y-%%m-%%d).'), format=arg
        )
        return None

    def date_format(value: str, run: _Run, line: _WorkLine | None) -> str:
        try:
            return datetime.fromisoformat(value.strip()).strftime(arg)
        except ValueError:
            return value  # not a date: the text goes on as it is, the order is not stopped

    return date_format


def _number_format(check: _Checker, arg: object, given: dict) -> Transform | None:
    if not isinstance(arg, dict):
        check.problem(
            _('%(rule)s: "number_format" needs options such as {"decimals": 2, "decimal_sep": ","}.')
        )
        return None
    for key in arg:
        if key not in NUMBER_FORMAT_KEYS:
            check.problem(_('%(rule)s: "number_format" has no option "%(option)s".'), option=key)
    decimals = arg.get("decimals", 2)
    decimal_sep, thousands_sep = arg.get("decimal_sep", "."), arg.get("thousands_sep", "")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        check.problem(_('%(rule)s: "decimals" must be a whole number from 0 to 6.'))
        return None
    if not isinstance(decimal_sep, str) or not isinstance(thousands_sep, str):
        check.problem(_('%(rule)s: "decimal_sep" and "thousands_sep" must be texts.'))
        return None
    step = Decimal(1).scaleb(-decimals)

    def number_format(value: str, run: _Run, line: _WorkLine | None) -> str:
        try:
            number = Decimal(value.strip())
            if not number.is_finite():
                return value
            number = number.quantize(step, rounding=ROUND_HALF_UP, context=_DECIMALS)
        except InvalidOperation:
            return value  # not a number (or too large to show): left as it is
        if not number:
            number = abs(number)  # no "-0,00" for a rounded-away negative
        whole, _dot, fraction = format(number, f",.{decimals}f").partition(".")
        whole = whole.replace(",", thousands_sep)
        return whole + decimal_sep + fraction if decimals else whole

    return number_format


def _switch(kind: str, change: Callable[[str], str]) -> Callable[[_Checker, object, dict], Transform | None]:
    def made(check: _Checker, arg: object, given: dict) -> Transform | None:
        if not isinstance(arg, bool):
            check.problem(_('%(rule)s: "%(kind)s" takes true or false.'), kind=kind)
            return None
        return (lambda value, run, line: change(value)) if arg else (lambda value, run, line: value)

    return made


def _truncate(check: _Checker, arg: object, given: dict) -> Transform | None:
    if isinstance(arg, bool) or not isinstance(arg, int) or arg <= 0:
        check.problem(_('%(rule)s: "truncate" needs a number of characters above 0.'))
        return None
    return lambda value, run, line: value[:arg]


def _when_empty(check: _Checker, arg: object, given: dict) -> Transform | None:
    if not _needs_text(check, "when_empty", arg):
        return None
    return lambda value, run, line: arg if _blank(value) else value


_TRANSFORMS: dict[str, Callable[[_Checker, object, dict], Transform | None]] = {
    "fixed": _fixed,
    "lookup": _lookup,
    "concat": _concat,
    "regex_extract": _regex_extract,
    "regex_replace": _regex_replace,
    "date_format": _date_format,
    "number_format": _number_format,
    "upper": _switch("upper", str.upper),
    "lower": _switch("lower", str.lower),
    "strip": _switch("strip", str.strip),
    "truncate": _truncate,
    "when_empty": _when_empty,
}
