"""What every WooCommerce REST controller shares: errors, paging, filters, batch, numbers.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/rest-api/Controllers/Version3/class-wc-rest-controller.php``: ``batch_items``
  (100 items, not atomic, per-item errors), ``prepare_links``;
- ``includes/rest-api/Controllers/Version3/class-wc-rest-crud-controller.php``:
  ``get_collection_params`` (page, per_page 1..100, offset, include/exclude, order/orderby,
  after/before/modified_after/modified_before, dates_are_gmt) and ``get_items`` (the
  ``X-WP-Total``/``X-WP-TotalPages`` headers, ``prev``/``next`` links only);
- ``includes/abstracts/abstract-wc-data.php``: ``set_meta_data`` (meta merged by id or key);
- ``includes/wc-formatting-functions.php``: ``wc_format_decimal`` and how PHP prints numbers;
- WordPress core: ``wp_json_encode``, ``rest_invalid_param``, PHP's ``$_GET`` array syntax.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_plus, urlencode
from zoneinfo import ZoneInfo

from ..http import SandboxRequest, SandboxResponse

if TYPE_CHECKING:  # annotations only: store.py imports this module
    from .store import Store

WC_VERSION = "11.0.1"
WP_VERSION = "7.0.4"
REST_BASE = "/wp-json/wc/v3"

STORE_TIMEZONE = ZoneInfo("Europe/Stockholm")
BATCH_LIMIT = 100  # the woocommerce_rest_batch_items_limit filter's default

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")  # wc_get_rounding_precision(): line amounts are kept to 6 decimals
ZERO = Decimal("0")


class WooError(Exception):
    """An error WooCommerce would answer as ``{"code","message","data":{"status"}}``."""

    def __init__(self, code: str, message: str, status: int = 400, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, "data": {"status": self.status, **self.extra}}


# -- encoding and numbers ----------------------------------------------------------------------


def wp_json(data) -> bytes:
    """``wp_json_encode`` without flags: compact, ``\\/`` for ``/``, ``\\u00e4``-style escapes for non-ASCII."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def wp_response(data, status: int = 200, headers: list[tuple[str, str]] | None = None) -> SandboxResponse:
    return SandboxResponse(status=status, body=wp_json(data), headers=list(headers or []))


def _dec(value) -> Decimal:
    if value is None or value == "":
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise WooError("rest_invalid_param", f"Invalid amount: {value}", 400)


def _money(value: Decimal) -> str:
    """``wc_format_decimal($x, 2)``: PHP round(), half away from zero."""
    result = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{(result + 0):.2f}" if result != 0 else "0.00"


def _micro(value: Decimal) -> Decimal:
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


def _php_str(value: Decimal) -> str:
    """How PHP prints a float amount it stored without formatting (``"50"``, ``"12.5"``)."""
    value = value.quantize(MICRO, rounding=ROUND_HALF_UP).normalize()
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def _php_number(value: Decimal):
    """A JSON number as PHP's ``json_encode`` writes a numeric value: int when whole."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _line_price(total: str, quantity: int):
    """``line_items[].price`` is ``get_total() / get_quantity()`` in PHP: int when it divides evenly."""
    if not quantity:
        return 0
    number = _dec(total)
    if number == number.to_integral_value() and int(number) % quantity == 0:
        return int(number) // quantity
    return float(_php_str(number)) / quantity


def _truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _rawurlencode(value: str) -> str:
    return quote(value, safe="-_.~")


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}(?::?\d{2})?)?$", re.I
)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


def _local_and_gmt(value: str | None, *, is_gmt: bool) -> tuple[str | None, str | None]:
    """A site-local or GMT date string from a client → (local, gmt) as WooCommerce stores both."""
    if not value:
        return None, None
    match = _RFC3339.match(value)
    if not match:
        raise WooError("rest_invalid_param", "Invalid date.", 400)
    naive = datetime(*(int(match.group(i)) for i in range(1, 7)))
    if match.group(8):
        aware = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        local = aware.astimezone(STORE_TIMEZONE)
    elif is_gmt:
        local = naive.replace(tzinfo=timezone.utc).astimezone(STORE_TIMEZONE)
    else:
        local = naive.replace(tzinfo=STORE_TIMEZONE)
    return _iso(local), _iso(local.astimezone(timezone.utc))


def _query_date(value: str) -> str:
    """What ``WP_Date_Query::build_mysql_datetime`` compares with: the wall time, converted to the
    site's zone only when the value names an offset (so ``...Z`` is moved to Stockholm time even
    for ``dates_are_gmt``: one reason clients are told to keep an overlap window)."""
    match = _RFC3339.match(value)
    if not match:
        raise WooError("rest_invalid_param", "Invalid parameter(s): date", 400)
    if match.group(8):
        aware = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        return _iso(aware.astimezone(STORE_TIMEZONE))
    return _iso(datetime(*(int(match.group(i)) for i in range(1, 7))))


def _slugify(text: str) -> str:
    text = text.lower()
    for src, dst in (("å", "a"), ("ä", "a"), ("ö", "o"), ("é", "e"), ("ü", "u")):
        text = text.replace(src, dst)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "product"


def _invalid_param(name: str, message: str, code: str = "rest_out_of_bounds") -> WooError:
    return WooError(
        "rest_invalid_param",
        f"Invalid parameter(s): {name}",
        400,
        params={name: message},
        details={name: {"code": code, "message": message, "data": None}},
    )


def _php_query(raw_query: str) -> dict:
    """``$_GET`` as PHP builds it: ``a[]=1&a[]=2`` becomes an array, a repeated plain key keeps the last."""
    result: dict = {}
    if not raw_query:
        return result
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = unquote_plus(key)
        value = unquote_plus(value)
        match = re.match(r"^([^\[]+)((?:\[[^\]]*\])+)$", key)
        if not match:
            result[key] = value
            continue
        base, brackets = match.group(1), re.findall(r"\[([^\]]*)\]", match.group(2))
        node = result.get(base)
        if not isinstance(node, dict):
            node = result[base] = {}
        for i, sub in enumerate(brackets):
            last = i == len(brackets) - 1
            if sub == "":
                sub = str(len([k for k in node if k.isdigit()]))
            if last:
                node[sub] = value
            else:
                child = node.get(sub)
                if not isinstance(child, dict):
                    child = node[sub] = {}
                node = child
    return result


def _public(rep: dict) -> dict:
    return {k: v for k, v in rep.items() if not k.startswith("__")}


def _list_param(request: SandboxRequest, name: str) -> list[str]:
    """A list parameter as WordPress reads it: ``a[]=x``, ``a[0]=x`` or ``a=x,y``."""
    value = _php_query(request.raw_query).get(name)
    if value is None:
        return []
    values = list(value.values()) if isinstance(value, dict) else [value]
    out: list[str] = []
    for item in values:
        if isinstance(item, str):
            out.extend(v.strip() for v in item.split(",") if v.strip())
    return out


def _php_str_full(value: Decimal) -> str:
    """An unrounded tax amount as stored (WooCommerce keeps line taxes unrounded)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


class RestControllerMixin:
    """``WC_REST_Controller`` / ``WC_REST_CRUD_Controller``: what every resource's routes use."""

    # -- collections -------------------------------------------------------------------------------
    @staticmethod
    def _int_param(
        request: SandboxRequest, name: str, default: int, minimum: int, maximum: int | None
    ) -> int:
        raw = request.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _invalid_param(name, f"{name} is not of type integer.", "rest_invalid_type")
        if maximum is not None and not minimum <= value <= maximum:
            raise _invalid_param(
                name, f"{name} must be between {minimum} (inclusive) and {maximum} (inclusive)"
            )
        if value < minimum:
            raise _invalid_param(name, f"{name} must be greater than or equal to {minimum}")
        return value

    def _paging(self, request: SandboxRequest) -> tuple[int, int, int | None]:
        per_page = self._int_param(request, "per_page", 10, 1, 100)
        page = self._int_param(request, "page", 1, 1, None)
        offset = self._int_param(request, "offset", 0, 0, None) if request.arg("offset") else None
        return per_page, page, offset

    @staticmethod
    def _order_dir(request: SandboxRequest, default: str = "desc") -> bool:
        order = (request.arg("order") or default).lower()
        if order not in ("asc", "desc"):
            raise _invalid_param("order", "order is not one of asc and desc.", "rest_not_in_enum")
        return order == "desc"

    def _paged_response(
        self,
        store: Store,
        request: SandboxRequest,
        ids: list[int],
        render,
        collection: str,
        paging: tuple[int, int, int | None],
    ) -> SandboxResponse:
        per_page, page, offset = paging
        total = len(ids)
        start = offset if offset is not None else (page - 1) * per_page
        chunk = ids[start : start + per_page]
        max_pages = math.ceil(total / per_page) if per_page else 0
        headers = [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(max_pages))]
        base = f"{store.home()}{REST_BASE}/{collection}"
        query = [(k, v) for k, values in request.query.items() for v in values if k != "page"]
        links = []
        if page > 1:
            links.append(
                f'<{base}?{urlencode(query + [("page", min(page - 1, max(max_pages, 1)))])}>; rel="prev"'
            )
        if max_pages > page:
            links.append(f'<{base}?{urlencode(query + [("page", page + 1)])}>; rel="next"')
        if links:
            headers.append(("Link", ", ".join(links)))
        return wp_response([render(i) for i in chunk], 200, headers)

    def _id_list(self, request: SandboxRequest, name: str) -> list[int]:
        out = []
        for value in _list_param(request, name):
            try:
                out.append(int(value))
            except ValueError:
                raise _invalid_param(name, f"{name}[0] is not of type integer.", "rest_invalid_type")
        return out

    def _date_filters(self, request: SandboxRequest, items: list[dict]) -> list[dict]:
        gmt = _truthy(request.arg("dates_are_gmt"))
        checks = []
        for param, field, greater in (
            ("after", "date_created", True),
            ("before", "date_created", False),
            ("modified_after", "date_modified", True),
            ("modified_before", "date_modified", False),
        ):
            value = request.arg(param)
            if value:
                try:
                    bound = _query_date(value)
                except WooError:
                    raise _invalid_param(param, "Invalid date.", "rest_invalid_date")
                checks.append((field + ("_gmt" if gmt else ""), bound, greater))
        if not checks:
            return items
        out = []
        for item in items:
            keep = True
            for field, bound, greater in checks:
                value = item.get(field) or ""
                if (greater and not value > bound) or (not greater and not value < bound):
                    keep = False
                    break
            if keep:
                out.append(item)
        return out

    def _select(
        self,
        store: Store,
        request: SandboxRequest,
        kind: str,
        source: dict,
        orderbys: tuple,
        prefilter=None,
        default_order: str = "desc",
        default_orderby: str = "date",
    ) -> list[int]:
        orderby = request.arg("orderby") or default_orderby
        if orderby not in orderbys:
            raise _invalid_param(
                "orderby", f"orderby is not one of {', '.join(orderbys)}.", "rest_not_in_enum"
            )
        desc = self._order_dir(request, default_order)
        include = self._id_list(request, "include")
        exclude = set(self._id_list(request, "exclude"))
        if orderby == "include" and include:
            ids = [i for i in include if i in source]
        elif prefilter is not None:
            ids = (
                [i for i in store.sorted_ids(kind, orderby, desc) if i in prefilter]
                if len(prefilter) * 8 > len(source)
                else [
                    o["id"] for o in self._sort([source[i] for i in prefilter if i in source], orderby, desc)
                ]
            )
        else:
            ids = store.sorted_ids(kind, orderby, desc)
        if include and orderby != "include":
            wanted = set(include)
            ids = [i for i in ids if i in wanted]
        if exclude:
            ids = [i for i in ids if i not in exclude]
        return ids

    @staticmethod
    def _sort(items: list[dict], orderby: str, desc: bool) -> list[dict]:
        field = {
            "date": "date_created_gmt",
            "modified": "date_modified_gmt",
            "title": "name",
            "slug": "slug",
            "name": "name",
            "registered_date": "date_created_gmt",
        }.get(orderby)
        if orderby == "menu_order":
            return sorted(items, key=lambda o: (o.get("menu_order") or 0, o["id"]), reverse=desc)
        if orderby == "price":
            return sorted(items, key=lambda o: (_dec(o.get("price")), o["id"]), reverse=desc)
        if field:
            return sorted(items, key=lambda o: (o.get(field) or "", o["id"]), reverse=desc)
        return sorted(items, key=lambda o: o["id"], reverse=desc)

    def _links(
        self,
        store: Store,
        path: str,
        collection: str,
        up: str | None = None,
        allow: tuple = ("GET", "POST", "PUT", "PATCH", "DELETE"),
        extra: dict | None = None,
    ) -> dict:
        base = store.home() + REST_BASE
        links = {
            "self": [{"href": base + path, "targetHints": {"allow": list(allow)}}],
            "collection": [{"href": base + collection}],
        }
        if extra:
            links.update(extra)
        if up:
            links["up"] = [{"href": base + up}]
        return links

    def _batch(self, store: Store, request: SandboxRequest, create, update, delete) -> SandboxResponse:
        body = self._body(request)
        creates = body.get("create") or []
        updates = body.get("update") or []
        deletes = body.get("delete") or []
        if len(creates) + len(updates) + len(deletes) > BATCH_LIMIT:
            raise WooError(
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {BATCH_LIMIT} items for this request.",
                413,
            )
        result: dict = {}
        if creates:
            result["create"] = []
            for item in creates:
                try:
                    result["create"].append(create(item))
                except WooError as error:
                    result["create"].append(
                        {
                            "id": 0,
                            "error": {
                                "code": error.code,
                                "message": error.message,
                                "data": {"status": error.status, **error.extra},
                            },
                        }
                    )
        if updates:
            result["update"] = []
            for item in updates:
                item_id = int(item.get("id") or 0) if isinstance(item, dict) else 0
                try:
                    result["update"].append(update(item_id, item))
                except WooError as error:
                    result["update"].append(
                        {
                            "id": item_id,
                            "error": {
                                "code": error.code,
                                "message": error.message,
                                "data": {"status": error.status, **error.extra},
                            },
                        }
                    )
        if deletes:
            result["delete"] = []
            for item in deletes:
                item_id = int(item.get("id") if isinstance(item, dict) else item or 0)
                if not item_id:
                    continue
                try:
                    result["delete"].append(delete(item_id))
                except WooError as error:
                    result["delete"].append(
                        {
                            "id": item_id,
                            "error": {
                                "code": error.code,
                                "message": error.message,
                                "data": {"status": error.status, **error.extra},
                            },
                        }
                    )
        return wp_response(result)

    @staticmethod
    def _body(request: SandboxRequest) -> dict:
        if not request.body:
            return {}
        content_type = (request.headers.get("Content-Type") or "").lower()
        if content_type.startswith("application/x-www-form-urlencoded"):
            return {
                k: v
                for k, v in _php_query(request.body.decode("utf-8")).items()
                if not k.startswith("oauth_")
            }
        try:
            data = json.loads(request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        if not isinstance(data, dict):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        return data

    # -- meta data (WC_Data::set_meta_data) --
    def _merge_meta(self, store: Store, existing: list, posted: list) -> list:
        result = [dict(m) for m in existing]
        for meta in posted:
            if not isinstance(meta, dict) or "key" not in meta:
                continue
            target = next(
                (
                    m
                    for m in result
                    if (meta.get("id") and m.get("id") == meta["id"]) or m.get("key") == meta["key"]
                ),
                None,
            )
            if target is not None:
                target["value"] = meta.get("value")
            else:
                result.append({"id": store.next_id("meta"), "key": meta["key"], "value": meta.get("value")})
        return result
