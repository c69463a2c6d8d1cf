"""A unit's price: configured (``unit_price``) or looked up once (``pricing:``, AWS Pricing API).

The lookup asks the Pricing API's ``GetProducts`` for the on-demand hourly price of one EC2
instance type in one region (operating system, shared tenancy, no pre-installed software,
capacity status ``Used``), stores it with its date, and reads the stored row from then on:
a price list changes rarely and a plan must not depend on the network. Every failure
(no access, no such instance type, an answer it cannot read, several different prices) is a
:class:`~forescale.errors.PricingError` that says what to fix; a price is never guessed.
The boto3 client is injected (:class:`PriceList`); :func:`pricing_client` builds the default.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from forescale.config.settings import PricingLookup, ServiceSettings
from forescale.errors import PricingError
from forescale.forecaster.cost import Price
from forescale.records import StoredPrice
from forescale.store import Store

__all__ = ["MAX_PAGES", "ClientFactory", "lookup_price", "price_key", "pricing_client", "resolve"]

MAX_PAGES = 10  # GetProducts pages read at most (one instance type matches a handful)

ClientFactory = Callable[[PricingLookup], Any]


def price_key(lookup: PricingLookup) -> str:
    """The store key of a lookup: ``aws:ec2:<type>:<region>:<os>:<tenancy>``."""
    return f"aws:ec2:{lookup.aws_instance_type}:{lookup.region}:{lookup.os}:{lookup.tenancy}"


def pricing_client(lookup: PricingLookup) -> Any:
    """The default Pricing API client (its own region; ``profile``, ``endpoint_url``)."""
    with _aws_errors(lookup):
        session = boto3.session.Session(profile_name=lookup.profile, region_name=lookup.api_region)
        return session.client(
            "pricing",
            endpoint_url=lookup.endpoint_url,
            config=Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=10,
                read_timeout=30,
                user_agent_extra="forescale",
            ),
        )


def resolve(
    service: ServiceSettings,
    store: Store,
    *,
    now: dt.datetime,
    client_factory: ClientFactory = pricing_client,
) -> Price | None:
    """The service's price per unit-hour: ``unit_price``, else the stored lookup of
    ``pricing`` (asking the Pricing API once when none is stored), else None."""
    if service.unit_price is not None:
        return Price(
            per_unit_hour=service.unit_price.per_hour,
            currency=service.unit_price.currency,
            source="unit_price",
        )
    if service.pricing is None:
        return None
    key = price_key(service.pricing)
    stored = store.price(key)
    if stored is None:
        per_hour, currency, description = lookup_price(
            client_factory(service.pricing), service.pricing
        )
        stored = StoredPrice(
            key=key,
            per_hour=per_hour,
            currency=currency,
            fetched_at=now.astimezone(dt.UTC),
            description=description,
        )
        store.save_price(stored)
    return Price(
        per_unit_hour=stored.per_hour,
        currency=stored.currency,
        source=f"AWS price list: {stored.description} (fetched {stored.fetched_at:%Y-%m-%d})",
    )


def lookup_price(client: Any, lookup: PricingLookup) -> tuple[float, str, str]:
    """Ask ``GetProducts`` for the on-demand hourly price of ``lookup``.

    Returns (price per hour, currency, the price list's description of it)."""
    filters = [
        {"Type": "TERM_MATCH", "Field": field, "Value": value}
        for field, value in (
            ("instanceType", lookup.aws_instance_type),
            ("regionCode", lookup.region),
            ("operatingSystem", lookup.os),
            ("tenancy", lookup.tenancy),
            ("preInstalledSw", "NA"),
            ("capacitystatus", "Used"),
        )
    ]
    what = f"{lookup.aws_instance_type} in {lookup.region} ({lookup.os}, {lookup.tenancy})"
    found: dict[tuple[float, str], str] = {}
    token: str | None = None
    with _aws_errors(lookup):
        for _ in range(MAX_PAGES):
            request: dict[str, Any] = {
                "ServiceCode": "AmazonEC2",
                "Filters": filters,
                "FormatVersion": "aws_v1",
                "MaxResults": 100,
            }
            if token:
                request["NextToken"] = token
            answer = client.get_products(**request)
            for item in answer.get("PriceList", []):
                for per_hour, currency, description in _on_demand_hourly(item, what):
                    found.setdefault((per_hour, currency), description)
            token = answer.get("NextToken")
            if not token:
                break
        else:
            raise PricingError(
                f"the AWS price list answered more than {MAX_PAGES} pages for {what}; "
                "set unit_price instead"
            )
    if not found:
        raise PricingError(
            f"the AWS price list has no on-demand hourly price for {what}; check "
            "aws_instance_type, region and os, or set unit_price"
        )
    if len(found) > 1:
        prices = ", ".join(f"{p:g} {c}" for p, c in sorted(found))
        raise PricingError(
            f"the AWS price list has {len(found)} different on-demand prices for {what} "
            f"({prices}); set unit_price to the one you pay"
        )
    ((per_hour, currency), description) = next(iter(found.items()))
    return per_hour, currency, description


def _on_demand_hourly(item: Any, what: str) -> Iterator[tuple[float, str, str]]:
    """The hourly on-demand prices in one price list entry (a JSON text)."""
    try:
        product = json.loads(item) if isinstance(item, str) else item
        terms = product["terms"].get("OnDemand", {})
        for term in terms.values():
            for dimension in term["priceDimensions"].values():
                if str(dimension.get("unit", "")).lower() not in ("hrs", "hours", "hour"):
                    continue
                for currency, text in dimension["pricePerUnit"].items():
                    value = float(text)
                    if not math.isfinite(value) or value < 0:
                        raise ValueError(f"price {text!r}")
                    if value == 0:  # a placeholder entry (e.g. reserved-only), not a price
                        continue
                    yield value, str(currency), str(dimension.get("description", what))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PricingError(
            f"cannot read the AWS price list's answer for {what} ({type(exc).__name__}: {exc}); "
            "set unit_price instead"
        ) from exc


@contextmanager
def _aws_errors(lookup: PricingLookup) -> Iterator[None]:
    where = f"the AWS Pricing API ({lookup.endpoint_url or lookup.api_region})"
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        text = str(error.get("Message", "")).strip() or code
        hint = (
            "allow the IAM action pricing:GetProducts for the identity forescale runs as"
            if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation")
            else "check the pricing settings or set unit_price"
        )
        raise PricingError(f"{where} refused GetProducts ({code}): {text}; {hint}") from exc
    except BotoCoreError as exc:
        raise PricingError(
            f"{where} could not be asked: {exc}; check credentials, api_region and the "
            "network path, or set unit_price"
        ) from exc
