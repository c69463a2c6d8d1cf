"""A unit's price looked up once with the AWS Pricing API's GetProducts (botocore's Stubber:
moto has no Pricing API), stored with its date, and every failure a one-line PricingError."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from forescale.config.settings import PricingLookup, ServiceSettings
from forescale.errors import PricingError
from forescale.pricing import lookup_price, price_key, resolve
from forescale.store import Store

NOW = dt.datetime(2025, 11, 20, 9, 0, tzinfo=dt.UTC)
LOOKUP = PricingLookup(aws_instance_type="m6i.xlarge", region="eu-west-1")


def product(price: str, *, unit: str = "Hrs", currency: str = "USD") -> str:
    """One price list entry as GetProducts returns it (a JSON text)."""
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {"instanceType": "m6i.xlarge", "regionCode": "eu-west-1"},
                "sku": "ABC",
            },
            "terms": {
                "OnDemand": {
                    "ABC.JRTCKXETXF": {
                        "priceDimensions": {
                            "ABC.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": unit,
                                "description": f"${price} per On Demand Linux m6i.xlarge "
                                "Instance Hour",
                                "pricePerUnit": {currency: price},
                            }
                        }
                    }
                }
            },
        }
    )


def client() -> Any:
    return boto3.client(
        "pricing",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def expected_request(token: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ServiceCode": "AmazonEC2",
        "Filters": ANY,
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    if token:
        request["NextToken"] = token
    return request


def service(tmp_path: Path, **price: Any) -> ServiceSettings:
    (tmp_path / "tf").mkdir(exist_ok=True)
    return ServiceSettings.model_validate(
        {
            "source": {"type": "csv", "path": str(tmp_path / "d.csv")},
            "capacity_per_unit": 100,
            "min_units": 1,
            "max_units": 10,
            "iac": {"working_dir": str(tmp_path / "tf"), "address": "web_min"},
            **price,
        }
    )


def test_the_on_demand_price_is_read_across_pages_with_the_right_filters() -> None:
    c = client()
    with Stubber(c) as stub:
        stub.add_response(
            "get_products",
            {"PriceList": [product("0.0000", unit="Hrs")], "NextToken": "p2"},
            expected_request(),
        )
        stub.add_response(
            "get_products", {"PriceList": [product("0.2140")]}, expected_request("p2")
        )
        per_hour, currency, description = lookup_price(c, LOOKUP)
        stub.assert_no_pending_responses()
    assert (per_hour, currency) == (0.214, "USD")
    assert "m6i.xlarge" in description


def test_the_filters_name_the_instance_and_exclude_other_offers() -> None:
    seen: list[dict[str, Any]] = []

    class Recorder:
        def get_products(self, **request: Any) -> dict[str, Any]:
            seen.append(request)
            return {"PriceList": [product("0.192")]}

    lookup_price(Recorder(), LOOKUP)
    filters = {f["Field"]: f["Value"] for f in seen[0]["Filters"]}
    assert filters == {
        "instanceType": "m6i.xlarge",
        "regionCode": "eu-west-1",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }


def test_looked_up_once_then_read_from_the_store(tmp_path: Path) -> None:
    svc = service(tmp_path, pricing=LOOKUP.model_dump())
    store = Store.open(f"sqlite:///{tmp_path / 'f.db'}")
    calls = 0

    def factory(lookup: PricingLookup) -> Any:
        nonlocal calls
        calls += 1
        c = client()
        stub = Stubber(c)
        stub.add_response("get_products", {"PriceList": [product("0.2140")]}, expected_request())
        stub.activate()
        return c

    try:
        first = resolve(svc, store, now=NOW, client_factory=factory)
        again = resolve(svc, store, now=NOW + dt.timedelta(days=3), client_factory=factory)
        stored = store.price(price_key(LOOKUP))
    finally:
        store.close()
    assert calls == 1
    assert first is not None and again is not None
    assert first.per_unit_hour == again.per_unit_hour == 0.214
    assert "fetched 2025-11-20" in first.source and first.source == again.source
    assert stored is not None and stored.fetched_at == NOW


def test_unit_price_needs_no_lookup(tmp_path: Path) -> None:
    svc = service(tmp_path, unit_price={"per_hour": 0.5, "currency": "EUR"})
    store = Store.open(f"sqlite:///{tmp_path / 'f.db'}")

    def factory(lookup: PricingLookup) -> Any:
        raise AssertionError("no lookup for a configured price")

    try:
        price = resolve(svc, store, now=NOW, client_factory=factory)
        none = resolve(service(tmp_path), store, now=NOW, client_factory=factory)
    finally:
        store.close()
    assert price is not None and (price.per_unit_hour, price.currency) == (0.5, "EUR")
    assert none is None


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"PriceList": []}, "no on-demand hourly price for m6i.xlarge in eu-west-1"),
        (
            {"PriceList": [product("0.19"), product("0.21")]},
            "2 different on-demand prices",
        ),
        ({"PriceList": ["{not json"]}, "cannot read the AWS price list's answer"),
        ({"PriceList": [product("-1")]}, "cannot read the AWS price list's answer"),
    ],
)
def test_answers_that_give_no_single_price_are_errors(answer: dict[str, Any], words: str) -> None:
    c = client()
    with Stubber(c) as stub:
        stub.add_response("get_products", answer, expected_request())
        with pytest.raises(PricingError) as caught:
            lookup_price(c, LOOKUP)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_access_denied_says_which_permission() -> None:
    c = client()
    with Stubber(c) as stub:
        stub.add_client_error(
            "get_products",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform: pricing:GetProducts",
            http_status_code=400,
        )
        with pytest.raises(PricingError) as caught:
            lookup_price(c, LOOKUP)
    message = str(caught.value)
    assert "AccessDeniedException" in message and "pricing:GetProducts" in message
    assert "\n" not in message


def test_a_failed_lookup_stores_nothing(tmp_path: Path) -> None:
    svc = service(tmp_path, pricing=LOOKUP.model_dump())
    store = Store.open(f"sqlite:///{tmp_path / 'f.db'}")

    def factory(lookup: PricingLookup) -> Any:
        c = client()
        stub = Stubber(c)
        stub.add_response("get_products", {"PriceList": []}, expected_request())
        stub.activate()
        return c

    try:
        with pytest.raises(PricingError):
            resolve(svc, store, now=NOW, client_factory=factory)
        assert store.price(price_key(LOOKUP)) is None
    finally:
        store.close()


def test_a_price_is_given_one_way_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unit_price or pricing, not both"):
        service(tmp_path, unit_price={"per_hour": 0.5}, pricing=LOOKUP.model_dump())
