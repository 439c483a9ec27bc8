"""The invariant checker: after a run, with every service up again, reads the services'
databases, the maildrop and the simulator, and says which of the system's promises held.

`settle` first waits (at most `within` seconds, the minute the services are given) for work in
flight to finish: links BINDING or UNSUBSCRIBE_PENDING, emails not yet sent, SNS messages waiting,
usage hours not yet billed. What is still unfinished then is a broken promise, not a wait.
"""
import json
import os
import time
import urllib.request
from collections import Counter, defaultdict

LIVE = ("BINDING", "ACTIVE", "UNSUBSCRIBE_PENDING")


def in_flight(system):
    """What the services still owe: a count per kind, zero when settled."""
    return {
        "links BINDING or UNSUBSCRIBE_PENDING": int(system.query(
            "marketplace-link", "SELECT COUNT(*) FROM link WHERE state IN ('BINDING', 'UNSUBSCRIBE_PENDING') OR pending_step IS NOT NULL")[0][0]),
        "emails not sent": int(system.query("identity", "SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NULL")[0][0]),
        "SNS messages waiting": int(system.query("marketplace-link", "SELECT COUNT(*) FROM sns_message WHERE state IN ('WAITING', 'REFRESH')")[0][0]),
        "usage hours not billed": int(system.query("marketplace-link", "SELECT COUNT(*) FROM usage_hour WHERE state IN ('OPEN', 'FROZEN')")[0][0]),
    }


def settle(system, within):
    deadline = time.monotonic() + within
    started = time.monotonic()
    while True:
        owed = in_flight(system)
        if not any(owed.values()) or time.monotonic() > deadline:
            return owed, time.monotonic() - started
        time.sleep(2)


def check(system, driver):
    """[(invariant, held, detail)]"""
    results = []

    def result(name, failures, detail=""):
        results.append((name, not failures, "; ".join(map(str, failures[:5])) + (f" (+{len(failures) - 5} more)" if len(failures) > 5 else "")
                        if failures else detail))

    links = [dict(zip(("id", "account", "organization", "state"), row)) for row in system.query(
        "marketplace-link", "SELECT id, aws_account_id, organization_id, state FROM link")]
    billing = {row[1]: row[0] for row in system.query("organization", "SELECT organization_id, link_id FROM billing_account")}

    # Each AWS account linked to at most one organization, each organization to at most one contract.
    per_account, per_organization = defaultdict(set), defaultdict(set)
    for link in links:
        if link["state"] in LIVE:
            per_account[link["account"]].add(link["organization"])
            per_organization[link["organization"]].add(link["account"])
    result("each AWS account linked to at most one organization",
           [f"account {a}: organizations {sorted(o)}" for a, o in per_account.items() if len(o) > 1], f"{len(per_account)} accounts linked")
    result("each organization linked to at most one contract",
           [f"organization {o}: accounts {sorted(a)}" for o, a in per_organization.items() if len(a) > 1], f"{len(per_organization)} organizations linked")

    # Every ACTIVE link has exactly its billing record in organization; every CANCELLED one none.
    states = Counter(link["state"] for link in links)
    wrong = [f"ACTIVE link {l['id']} of {l['organization']}: billing record {billing.get(l['id'])!r}"
             for l in links if l["state"] == "ACTIVE" and l["id"] not in billing]
    wrong += [f"ACTIVE link {l['id']}: billing record on {billing[l['id']]}, link on {l['organization']}"
              for l in links if l["state"] == "ACTIVE" and l["id"] in billing and billing[l["id"]] != l["organization"]]
    result("every ACTIVE link has its billing record in organization", wrong, f"{states['ACTIVE']} ACTIVE links, {len(billing)} billing records")
    by_id = {link["id"]: link for link in links}
    result("every CANCELLED link has no billing record, and no record lacks an ACTIVE link",
           [f"{by_id[l]['state'] if l in by_id else 'unknown'} link {l} still bills {o}" for l, o in billing.items()
            if l not in by_id or by_id[l]["state"] != "ACTIVE"], f"{states['CANCELLED']} CANCELLED links")
    result("no link FAILED", [f"link {l['id']} FAILED" for l in links if l["state"] == "FAILED"])

    # What each journey did is what the services hold.
    by_organization = defaultdict(list)
    for link in links:
        by_organization[link["organization"]].append(link)
    mismatched = []
    for journey in driver.journeys:
        if not journey["bound"]:
            continue
        expected = "CANCELLED" if journey["cancelled"] else "ACTIVE"
        found = [l["state"] for l in by_organization.get(journey["organization"], [])]
        if found != [expected]:
            mismatched.append(f"buyer {journey['buyer']} organization {journey['organization']}: links {found}, expected [{expected}]")
    result("every bound journey's link is ACTIVE, or CANCELLED if the buyer cancelled", mismatched,
           f"{sum(j['bound'] for j in driver.journeys)} journeys bound, {sum(j['cancelled'] for j in driver.journeys)} cancelled")

    # No journey half done: nothing still owed once the services have had their minute.
    owed = in_flight(system)
    result("nothing left half done (links binding or cancelling, emails, SNS messages, usage hours)",
           [f"{count} {what}" for what, count in owed.items() if count])

    # No email lost or sent twice: each outbox email is in the maildrop exactly once, under its
    # id, and the maildrop holds nothing else.
    outbox = {row[0]: row[1] for row in system.query("identity", "SELECT id, sent_at FROM email_outbox")}
    files = Counter(name[:-4] for name in os.listdir(system.maildrop) if name.endswith(".eml")) if os.path.isdir(system.maildrop) else Counter()
    lost = [f"email {i} not delivered" for i in outbox if i not in files]
    extra = [f"maildrop file {name}.eml is no outbox email" for name in files if name not in outbox]
    unsent = [f"email {i} delivered but not marked sent" for i, sent in outbox.items() if i in files and not sent]
    registered = {j["email"] for j in driver.journeys if j.get("verified")}
    recipients = Counter(row[0].lower() for row in system.query("identity", "SELECT recipient FROM email_outbox WHERE kind = 'account'"))
    no_verification = [f"{email} got no verification email" for email in registered if not recipients[email.lower()]]
    result("no email lost or sent twice", lost + extra + unsent + no_verification, f"{len(outbox)} emails, {len(files)} files")

    # Metered totals equal reported usage: what AWS holds per customer and dimension is what the
    # usage reporter was told was recorded.
    simulator = system.processes["aws-marketplace-sim"][0]
    with urllib.request.urlopen(simulator.url + "/_sim/metering-records", timeout=30) as answer:
        records = json.load(answer)
    metered = Counter()
    for record in records:
        metered[(record["customerIdentifier"], record["dimension"])] += record["quantity"]
    reported = Counter()
    for journey in driver.journeys:
        for dimension, quantity in journey["usage"].items():
            reported[(journey["customer"], dimension)] += quantity
    keys = set(metered) | set(reported)
    result("metered totals equal reported usage",
           [f"customer {c} {d}: reported {reported[(c, d)]}, metered {metered[(c, d)]}" for c, d in sorted(keys) if metered[(c, d)] != reported[(c, d)]],
           f"{sum(reported.values())} units in {len(reported)} (customer, dimension) totals, {len(records)} hourly records")
    hours = Counter(row[0] for row in system.query("marketplace-link", "SELECT state FROM usage_hour"))
    result("every usage hour billed (SENT)", [f"{count} hours {state}" for state, count in hours.items() if state != "SENT"],
           f"{hours['SENT']} hours SENT")

    # Every refusal the driver saw was the expected code, and no journey failed.
    result("every refusal was the expected code and every journey finished", driver.stats.unexpected,
           ", ".join(f"{mistake}: {dict(codes)}" for mistake, codes in sorted(driver.stats.refusals.items())))
    return results
