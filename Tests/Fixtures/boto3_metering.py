"""Sends BatchMeterUsage calls with boto3 (a real AWS SDK) and prints what each came to, as JSON.

  boto3_metering.py ENDPOINT ACCESS_KEY SECRET_KEY CALLS_JSON

CALLS_JSON is a list of calls, each {"ProductCode": ... or null, "UsageRecords": [...]} with
Timestamp in epoch seconds. Prints a list: per call either {"results": [[status, id or null],
...], "unprocessed": n} or {"error": the AWS error code}.
"""
import datetime
import json
import sys


def main(endpoint, access_key, secret_key, calls_json):
    import boto3
    import botocore.config
    import botocore.exceptions

    config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name="us-east-1")
    metering = session.client("meteringmarketplace", endpoint_url=endpoint, config=config)
    output = []
    for call in json.loads(calls_json):
        records = []
        for record in call["UsageRecords"]:
            record = dict(record)
            record["Timestamp"] = datetime.datetime.fromtimestamp(record["Timestamp"], datetime.timezone.utc)
            records.append(record)
        arguments = {"UsageRecords": records}
        if call.get("ProductCode"):
            arguments["ProductCode"] = call["ProductCode"]
        try:
            answer = metering.batch_meter_usage(**arguments)
            output.append({"results": [[r["Status"], r.get("MeteringRecordId")] for r in answer["Results"]],
                           "unprocessed": len(answer.get("UnprocessedRecords", []))})
        except botocore.exceptions.ClientError as error:
            output.append({"error": error.response["Error"]["Code"]})
    print(json.dumps(output))


if __name__ == "__main__":
    main(*sys.argv[1:5])
