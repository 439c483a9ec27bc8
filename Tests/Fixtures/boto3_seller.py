"""Calls the simulator's seller APIs with boto3 (a real AWS SDK) and prints one JSON object.

  boto3_seller.py ENDPOINT TOKEN PRODUCT_CODE ACCESS_KEY SECRET_KEY

marketplace-entitlement defaults to the CBOR protocol in current botocore; the seller APIs we
simulate speak JSON 1.1, so the script gives botocore a copy of the service model whose
protocol is "json" (through AWS_DATA_PATH), as the JSON-speaking SDKs still do.
"""
import datetime
import json
import os
import sys
import tempfile


def json_entitlement_model():
    import botocore.loaders
    loader = botocore.loaders.Loader()
    version = loader.determine_latest_version("marketplace-entitlement", "service-2")
    model = loader.load_service_model("marketplace-entitlement", "service-2", version)
    model["metadata"]["protocol"] = "json"
    model["metadata"]["protocols"] = ["json"]
    root = tempfile.mkdtemp()
    os.makedirs(os.path.join(root, "marketplace-entitlement", version))
    with open(os.path.join(root, "marketplace-entitlement", version, "service-2.json"), "w") as out:
        json.dump(model, out)
    return root


def main(endpoint, token, product, access_key, secret_key):
    os.environ["AWS_DATA_PATH"] = json_entitlement_model()
    import boto3
    import botocore.config
    import botocore.exceptions

    config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name="us-east-1")
    metering = session.client("meteringmarketplace", endpoint_url=endpoint, config=config)
    entitlement = session.client("marketplace-entitlement", endpoint_url=endpoint, config=config)
    result = {}

    resolved = metering.resolve_customer(RegistrationToken=token)
    result["resolve"] = {k: resolved[k] for k in ("CustomerIdentifier", "CustomerAWSAccountId", "ProductCode", "LicenseArn")}
    customer = resolved["CustomerIdentifier"]

    entitlements, kwargs = [], {"ProductCode": product, "Filter": {"CUSTOMER_IDENTIFIER": [customer]}, "MaxResults": 1}
    while True:
        page = entitlement.get_entitlements(**kwargs)
        entitlements += [{"Dimension": e["Dimension"], "Value": e["Value"], "Expires": e["ExpirationDate"].isoformat()}
                         for e in page["Entitlements"]]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    result["entitlements"] = entitlements

    hour = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
    record = {"Timestamp": hour, "CustomerIdentifier": customer, "Dimension": "seats", "Quantity": 2}
    result["meter"] = [r["Status"] for r in metering.batch_meter_usage(ProductCode=product, UsageRecords=[record])["Results"]]
    # The identical record again is deduplicated; the same hour with another quantity is not billed.
    result["meterAgain"] = [r["Status"] for r in metering.batch_meter_usage(ProductCode=product, UsageRecords=[record])["Results"]]
    changed = dict(record, Quantity=3)
    result["meterChanged"] = [r["Status"] for r in metering.batch_meter_usage(ProductCode=product, UsageRecords=[changed])["Results"]]

    for name, key, secret in (("wrongSecret", access_key, "not-the-secret"), ("unknownKey", "AKIDNOBODY", "x")):
        bad = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
        try:
            bad.client("meteringmarketplace", endpoint_url=endpoint, config=config).resolve_customer(RegistrationToken=token)
            result[name] = "accepted"
        except botocore.exceptions.ClientError as error:
            result[name] = error.response["Error"]["Code"]
    try:
        metering.resolve_customer(RegistrationToken="not-a-token")
        result["badToken"] = "accepted"
    except botocore.exceptions.ClientError as error:
        result["badToken"] = error.response["Error"]["Code"]
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:6])
