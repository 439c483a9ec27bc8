"""Journeys per second against replicated services: each worker signs up (again after every 24
journeys: a user belongs to at most 25 organizations), then repeats the buyer's journey (fresh access token, GetMe, a new organization, "Set up your account" on the
simulator, AcceptRegistration, BindOrganization, GetBillingStatus) with a new buyer account each
time, for a fixed time. Calls go round robin over each service's replica URLs, over HTTP/2.

  journey_rate.py --identity URL[,URL] --organization URL[,URL] --link URL[,URL] --simulator URL
                  --maildrop DIR --buyers N --workers N --seconds S [--first-buyer K]
Prints one line: "journeys <n> failed <n> seconds <s> rate <journeys/s>".
"""
import argparse, asyncio, glob, itertools, json, re, time, uuid

import httpx


class Replicas:
    def __init__(self, urls):
        self.urls = itertools.cycle(urls.split(","))

    def url(self, path):
        return next(self.urls) + path


async def rpc(client, replicas, service_method, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    response = await client.post(replicas.url("/" + service_method), json=body, headers=headers, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"{service_method}: {response.status_code} {response.text[:200]}")
    return response.json()


async def sign_up(client, identity, maildrop, name):
    email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
    password = "journey rate passphrase"
    await rpc(client, identity, "identity.v1.IdentityService/Register", {"email": email, "password": password, "fullName": name})
    for _ in range(200):
        for path in glob.glob(maildrop + "/*.eml"):
            text = open(path, errors="replace").read()
            if email in text:
                match = re.search(r"token=([A-Za-z0-9_-]+)", text)
                if match:
                    await rpc(client, identity, "identity.v1.IdentityService/VerifyEmail", {"token": match.group(1)})
                    return await rpc(client, identity, "identity.v1.IdentityService/Login", {"email": email, "password": password})
        await asyncio.sleep(0.05)
    raise RuntimeError("no verification email for " + email)


async def journey(client, http1, args, services, session, buyer):
    identity, organization, link = services
    access = (await rpc(client, identity, "identity.v1.IdentityService/RefreshAccessToken", {"sessionToken": session}))["accessToken"]
    await rpc(client, identity, "identity.v1.IdentityService/GetMe", {}, access)
    created = await rpc(client, organization, "organization.v1.OrganizationService/CreateOrganization", {"name": f"Rate {buyer}"}, access)
    subscribed = await http1.post(f"{args.simulator}/buyer/offers/offer-{buyer}/subscribe", data={"as": f"buyer{buyer}"})
    customer = subscribed.headers["location"].split("/subscriptions/")[1].split("?")[0]
    setup = await http1.post(f"{args.simulator}/buyer/subscriptions/{customer}/setup", data={"as": f"buyer{buyer}"})
    token = re.search(r'name="x-amzn-marketplace-token" value="([^"]*)"', setup.text).group(1)
    claim = (await rpc(client, link, "marketplacelink.v1.MarketplaceLinkService/AcceptRegistration", {"registrationToken": token}))["claim"]
    bound = await rpc(client, link, "marketplacelink.v1.MarketplaceLinkService/BindOrganization",
                      {"claim": claim, "organizationId": created["id"]}, access)
    status = await rpc(client, link, "marketplacelink.v1.MarketplaceLinkService/GetBillingStatus", {"organizationId": created["id"]}, access)
    if bound.get("state") != "ACTIVE" or status.get("state") != "ACTIVE":
        raise RuntimeError(f"buyer {buyer}: {bound.get('state')} {status.get('state')}")


async def main():
    parser = argparse.ArgumentParser()
    for name in ("identity", "organization", "link", "simulator", "maildrop"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--buyers", type=int, required=True)
    parser.add_argument("--first-buyer", type=int, default=0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    services = (Replicas(args.identity), Replicas(args.organization), Replicas(args.link))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(http2=True, http1=False, limits=limits) as client, httpx.AsyncClient(limits=limits) as http1:
        buyers = iter(range(args.first_buyer, args.buyers))
        done, failed = [0], []
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()

        async def worker(index):
            session, journeys = None, 0
            while time.monotonic() < deadline:
                buyer = next(buyers, None)
                if buyer is None:
                    return
                try:
                    if session is None or journeys == 24:
                        session = (await sign_up(client, services[0], args.maildrop, f"worker{index}"))["sessionToken"]
                        journeys = 0
                    journeys += 1
                    await journey(client, http1, args, services, session, buyer)
                    done[0] += 1
                except Exception as error:  # counted and shown: a failed journey is a finding
                    failed.append(repr(error))

        await asyncio.gather(*(worker(index) for index in range(args.workers)))
        elapsed = time.monotonic() - started
    print(f"journeys {done[0]} failed {len(failed)} seconds {elapsed:.1f} rate {done[0] / elapsed:.2f}")
    for error in failed[:3]:
        print("  failure:", error)


asyncio.run(main())
