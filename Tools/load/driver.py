"""The load driver: buyer journeys started at a steady rate, each through the running services
as a buyer and their browser would go, with the mistakes a real population makes.

A journey: Register (a tenth submit twice), the link from the verification email in the maildrop,
VerifyEmail, Login (some type a wrong password first), UpdateBusinessProfile, CreateOrganization
(with an idempotency key, so a retried click makes one), subscribe and "Set up your account" on
the simulator, AcceptRegistration, BindOrganization (some click twice at once), the billing
page in the console (sign in there, then GET it), RecordUsage as the product's data plane, and for
some a cancellation on the simulator. Some journeys also have a member who is not an admin try to
bind and read billing.

Faults make calls fail; a step is retried, as a person clicking again would, while the failure
is one a retry can cure (no answer, unavailable, deadline exceeded) for up to `step_patience`
seconds. Every other answer is judged: what a step must answer, or the refusal a mistake must get.
The ledger records what each journey did, for the invariant checker.
"""
import asyncio
import contextvars
import glob
import itertools
import os
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone

import httpx

from system import DIMENSIONS, account

PASSWORD = "load journey passphrase"
RETRYABLE = {"transport", "unavailable", "deadline_exceeded", "aborted"}
# The step a journey is at (each journey is a task of its own), for the report of a failure.
CURRENT_STEP = contextvars.ContextVar("step", default="?")


class Refused(Exception):
    def __init__(self, code, message=""):
        super().__init__(f"{code}: {message[:300]}")
        self.code, self.message = code, message


class Unexpected(Exception):
    """An answer no journey should get: the journey stops and the run fails."""


class Stats:
    def __init__(self):
        self.latencies = defaultdict(list)       # step -> seconds (retries included)
        self.attempt_errors = defaultdict(Counter)  # step -> code -> count (retried)
        self.refusals = defaultdict(Counter)     # mistake -> code -> count (expected)
        self.unexpected = []                     # descriptions
        self.started = self.completed = self.failed = 0


class Maildrop:
    """The maildrop, read as a mail client would: each new .eml once, tokens by recipient."""

    def __init__(self, directory):
        self.directory = directory
        self.seen = set()
        self.tokens = defaultdict(list)

    def scan(self):
        for path in glob.glob(os.path.join(self.directory, "*.eml")):
            if path in self.seen:
                continue
            self.seen.add(path)
            try:
                text = open(path, errors="replace").read()
            except OSError:
                self.seen.discard(path)
                continue
            to = re.search(r"^To: (.+?)\r?$", text, re.M)
            token = re.search(r"/verify-email#token=([A-Za-z0-9_-]+)", text)
            if to and token:
                self.tokens[to.group(1).strip().lower()].append(token.group(1))

    async def verification_token(self, email, within):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.scan()
            if self.tokens.get(email.lower()):
                return self.tokens[email.lower()][-1]
            await asyncio.sleep(0.2)
        raise Unexpected(f"no verification email for {email} within {within} s")


class Driver:
    def __init__(self, system, rate, seconds, seed=1, step_patience=120, mistakes=True, cancel_share=0.2):
        self.system, self.rate, self.seconds, self.step_patience = system, rate, seconds, step_patience
        self.random = random.Random(seed)
        self.mistakes, self.cancel_share = mistakes, cancel_share
        self.stats = Stats()
        self.maildrop = Maildrop(system.maildrop)
        self.replicas = {name: itertools.cycle(system.processes[name]) for name in ("identity", "organization", "marketplace-link")}
        self.sim = system.processes["aws-marketplace-sim"][0].url
        self.console = system.processes["console"][0].url
        self.run_id = uuid.uuid4().hex[:6]
        # The ledger, read by the invariant checker.
        self.journeys = []   # one dict per journey started
        self.members = []    # finished buyers who may be invited elsewhere: [user_id, session, memberships]

    # MARK: Calls

    async def rpc(self, service, method, body, token=None, ip=None, credential=None, headers=None, timeout=15):
        replica = next(self.replicas[service])
        request_headers = {"content-type": "application/json", **(headers or {})}
        if token:
            request_headers["authorization"] = "Bearer " + token
        if ip:  # the front end passes on the buyer's address
            request_headers["x-service-credential"] = self.system.credential("load-driver")
            request_headers["x-end-user-ip"] = ip
        if credential:
            request_headers["x-service-credential"] = self.system.credential(credential)
        prefix = {"identity": "identity.v1.IdentityService", "organization": "organization.v1.OrganizationService",
                  "marketplace-link": "marketplacelink.v1.MarketplaceLinkService"}[service]
        try:
            answer = await self.h2.post(f"{replica.url}/{prefix}/{method}", json=body, headers=request_headers, timeout=timeout)
        except httpx.TimeoutException as error:
            raise Refused("deadline_exceeded", f"no answer within {timeout} s ({type(error).__name__})")
        except httpx.HTTPError as error:
            raise Refused("transport", f"{type(error).__name__}: {error}")
        if answer.status_code == 200:
            return answer.json()
        try:
            error = answer.json()
            raise Refused(error.get("code", f"http_{answer.status_code}"), error.get("message", ""))
        except ValueError:
            raise Refused("transport" if answer.status_code in (502, 503, 504) else f"http_{answer.status_code}", answer.text)

    async def step(self, name, operation):
        """Runs `operation` until it answers or fails in a way a retry cannot cure; the time it
        took (retries included) is the step's latency."""
        CURRENT_STEP.set(name)
        started = time.monotonic()
        delay = 0.25
        while True:
            try:
                result = await operation()
                self.stats.latencies[name].append(time.monotonic() - started)
                return result
            except Refused as refusal:
                if refusal.code not in RETRYABLE or time.monotonic() - started > self.step_patience:
                    raise
                self.stats.attempt_errors[name][refusal.code] += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2)

    def refusal(self, mistake, refusal, expected):
        self.stats.refusals[mistake][refusal.code] += 1
        if refusal.code not in expected:
            self.stats.unexpected.append(f"{mistake}: {refusal} (expected {'/'.join(sorted(expected))})")

    async def expect_refusal(self, mistake, operation, expected):
        try:
            await self.step(mistake, operation)
        except Refused as refusal:
            self.refusal(mistake, refusal, expected)
            return
        self.stats.unexpected.append(f"{mistake}: answered OK (expected {'/'.join(sorted(expected))})")

    @staticmethod
    async def answer_of(request, expect):
        """A browser's request (HTTP/1.1, as the simulator's and console's pages are used)."""
        try:
            answer = await request
        except httpx.TimeoutException as error:
            raise Refused("deadline_exceeded", f"no answer ({type(error).__name__})")
        except httpx.HTTPError as error:
            raise Refused("transport", f"{type(error).__name__}: {error}")
        if answer.status_code in (502, 503):
            raise Refused("unavailable", answer.text[:200])
        if answer.status_code not in expect:
            title = re.search(r"<title>([^<]*)</title>", answer.text)
            raise Refused(f"http_{answer.status_code}", title.group(1) if title else answer.text[:300])
        return answer

    async def form(self, path, fields, expect=(200, 302, 303)):
        """A form posted on the simulator's pages."""
        return await self.answer_of(self.h1.post(self.sim + path, data=fields, timeout=15), expect)

    # MARK: The journey

    async def journey(self, index):
        rng = random.Random(self.random.random())
        record = {"buyer": index, "account": account(index), "email": f"buyer{index}-{self.run_id}@load.example",
                  "organization": None, "customer": None, "bound": False, "cancelled": False, "usage": Counter(),
                  "done": False}
        self.journeys.append(record)
        self.stats.started += 1
        email, ip = record["email"], f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"
        mistakes = self.mistakes
        try:
            register = lambda: self.rpc("identity", "Register", {"email": email, "password": PASSWORD, "fullName": f"Buyer {index}"}, ip=ip)
            await self.step("register", register)
            if mistakes and rng.random() < 0.1:  # submitted twice: the same answer, nothing revealed
                await self.step("register_again", register)
            token = await self.maildrop.verification_token(email, within=self.step_patience)
            tries = Counter()

            async def verify():
                tries["verify"] += 1
                return await self.rpc("identity", "VerifyEmail", {"token": token}, ip=ip)
            try:
                await self.step("verify_email", verify)
            except Refused as refusal:
                # A retry of a link whose first use verified before its answer was lost is told
                # the link is used; the person signs in, as the page says.
                if tries["verify"] < 2 or "already been used" not in refusal.message:
                    raise
            record["verified"] = True
            if mistakes and rng.random() < 0.15:
                await self.expect_refusal("wrong_password", lambda: self.rpc(
                    "identity", "Login", {"email": email, "password": PASSWORD + " typo"}, ip=ip), {"unauthenticated"})
            login = await self.step("login", lambda: self.rpc("identity", "Login", {"email": email, "password": PASSWORD}, ip=ip))
            access, session, user_id = login["accessToken"], login["sessionToken"], login["user"]["id"]
            record["session"], record["user"] = session, user_id
            await self.step("business_profile", lambda: self.rpc("identity", "UpdateBusinessProfile", {
                "companyName": f"Load Co {index}", "companySize": "COMPANY_SIZE_11_TO_50", "country": "DE",
                "jobTitle": "Engineer", "useCase": "Load test"}, token=access, ip=ip))
            key = uuid.uuid4().hex
            organization = await self.step("create_organization", lambda: self.rpc(
                "organization", "CreateOrganization", {"name": f"Load Co {index}"}, token=access, headers={"idempotency-key": key}))
            org_id = record["organization"] = organization["id"]
            customer, registration = await self.step("subscribe", lambda: self.subscribe(index))
            record["customer"] = customer
            claim = (await self.step("accept_registration", lambda: self.rpc(
                "marketplace-link", "AcceptRegistration", {"registrationToken": registration}, ip=ip)))["claim"]
            if mistakes and rng.random() < 0.15 and self.members:
                await self.non_admin(rng, org_id, access, claim)
            await self.bind(rng, org_id, access, claim, double_click=mistakes and rng.random() < 0.2)
            record["bound"] = True
            await self.step("billing_page", lambda: self.billing_page(email, org_id))
            for _ in range(rng.randint(1, 3)):
                await self.report_usage(rng, record)
            if rng.random() < self.cancel_share:
                tries = Counter()
                await self.step("cancel", lambda: self.cancel(index, customer, tries))
                record["cancelled"] = True
            record["done"] = True
            self.members.append([user_id, session, 0])
            self.stats.completed += 1
        except (Refused, Unexpected) as error:
            self.stats.failed += 1
            self.stats.unexpected.append(f"journey {index}, {CURRENT_STEP.get()}: {error}")

    async def subscribe(self, index):
        """Subscribe to the offer, then "Set up your account": the token the console would get."""
        subscribed = await self.form(f"/buyer/offers/offer-{index}/subscribe", {"as": f"buyer{index}"}, expect=(302, 303))
        customer = subscribed.headers["location"].split("/subscriptions/")[1].split("?")[0]
        setup = await self.form(f"/buyer/subscriptions/{customer}/setup", {"as": f"buyer{index}"}, expect=(200,))
        token = re.search(r'name="x-amzn-marketplace-token" value="([^"]*)"', setup.text)
        if not token:
            raise Unexpected("no registration token on the simulator's setup page")
        return customer, token.group(1)

    async def non_admin(self, rng, org_id, admin_access, claim):
        """A member without the ADMIN role: may not bind the contract nor read billing."""
        member = rng.choice(self.members[-200:])
        if member[2] >= 20:
            return
        member[2] += 1
        user_id, session = member[0], member[1]
        await self.step("add_member", lambda: self.rpc(
            "organization", "AddMember", {"organizationId": org_id, "userId": user_id, "role": "MEMBER"}, token=admin_access))
        access = (await self.step("refresh_token", lambda: self.rpc("identity", "RefreshAccessToken", {"sessionToken": session})))["accessToken"]
        await self.step("accept_invitation", lambda: self.rpc("organization", "AcceptInvitation", {"organizationId": org_id}, token=access))
        await self.expect_refusal("non_admin_bind", lambda: self.rpc(
            "marketplace-link", "BindOrganization", {"claim": claim, "organizationId": org_id}, token=access), {"permission_denied"})
        await self.expect_refusal("non_admin_billing", lambda: self.rpc(
            "marketplace-link", "GetBillingStatus", {"organizationId": org_id}, token=access), {"permission_denied"})

    async def bind(self, rng, org_id, access, claim, double_click):
        """BindOrganization; a double click sends it twice at once: one binds, the other is told
        the registration is used. A retried bind whose first try bound is told the same: then
        the billing status says what happened."""
        body = {"claim": claim, "organizationId": org_id}
        tries = Counter()

        async def attempt():
            tries["bind"] += 1
            return await self.rpc("marketplace-link", "BindOrganization", body, token=access)

        if double_click:
            answers = await asyncio.gather(self.step("bind", attempt), self.step("bind", attempt), return_exceptions=True)
            refused = [a for a in answers if isinstance(a, Refused)]
            others = [a for a in answers if isinstance(a, Exception) and not isinstance(a, Refused)]
            if others:
                raise others[0]
            for refusal in refused:
                self.refusal("double_click_bind", refusal, {"failed_precondition"})
            if len(refused) == 2 and tries["bind"] == 2:
                self.stats.unexpected.append("double_click_bind: neither click bound")
        else:
            try:
                await self.step("bind", attempt)
            except Refused as refusal:
                if refusal.code != "failed_precondition" or tries["bind"] < 2:
                    raise
                # An earlier try may have bound before its answer was lost; the status tells.
        status = await self.step("billing_active", lambda: self.until_active(org_id, access))
        return status

    async def until_active(self, org_id, access):
        """GetBillingStatus until the link is ACTIVE (a bind that found organization down
        finishes in the background)."""
        deadline = time.monotonic() + self.step_patience
        while True:
            status = await self.step("get_billing_status", lambda: self.rpc(
                "marketplace-link", "GetBillingStatus", {"organizationId": org_id}, token=access))
            state = status.get("state", "")
            if state == "ACTIVE":
                return status
            if state not in ("BINDING",) or time.monotonic() > deadline:
                raise Unexpected(f"organization {org_id}: billing {state or status.get('provider')} after binding")
            await asyncio.sleep(0.5)

    async def billing_page(self, email, org_id):
        """The billing page as a buyer's browser gets it (cookies of its own): sign in to the
        console, then GET the page."""
        async with httpx.AsyncClient(base_url=self.console, timeout=15, headers={"origin": self.console}) as browser:
            login = await self.answer_of(browser.get("/login"), expect=(200,))
            csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
            if not csrf:
                raise Unexpected("the console's sign-in page has no form token")
            await self.answer_of(browser.post("/login", data={"csrf": csrf.group(1), "email": email, "password": PASSWORD, "next": ""}),
                                 expect=(302, 303))
            page = await self.answer_of(browser.get(f"/organizations/{org_id}/billing"), expect=(200,))
            if "ACTIVE" not in page.text:
                raise Unexpected(f"the billing page of {org_id} does not say ACTIVE")

    async def report_usage(self, rng, record):
        """RecordUsage as the data plane sends it: retried with the same keys until answered."""
        events = [{"idempotencyKey": uuid.uuid4().hex, "organizationId": record["organization"], "dimension": rng.choice(DIMENSIONS),
                   "quantity": rng.randint(1, 100), "occurredAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
                  for _ in range(rng.randint(1, 5))]
        try:
            await self.step("record_usage", lambda: self.rpc("marketplace-link", "RecordUsage", {"events": events}, credential="usage-reporter"))
        except Refused as refusal:
            # Retried past the end of its hour (a fault outlasted it): refused whole, not billed.
            if refusal.code == "failed_precondition" and "already sent to AWS Marketplace" in refusal.message:
                self.refusal("usage_after_its_hour", refusal, {"failed_precondition"})
                return
            raise
        for event in events:
            record["usage"][event["dimension"]] += event["quantity"]

    async def cancel(self, index, customer, tries):
        """The buyer cancels on AWS; a retry after a lost answer finds nothing left to cancel."""
        tries["cancel"] += 1
        answer = await self.form(f"/buyer/subscriptions/{customer}/cancel", {"as": f"buyer{index}"}, expect=(200, 404))
        if answer.status_code == 404 and tries["cancel"] == 1:
            raise Unexpected(f"the simulator does not know subscription {customer}")

    # MARK: The run

    async def run(self):
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(http2=True, http1=False, limits=limits) as h2, httpx.AsyncClient(limits=limits) as h1:
            self.h2, self.h1 = h2, h1
            tasks = []
            started = time.monotonic()
            index = 0
            while time.monotonic() - started < self.seconds and index < self.system.buyers:
                tasks.append(asyncio.create_task(self.journey(index)))
                index += 1
                await asyncio.sleep(max(0.0, started + index / self.rate - time.monotonic()))
            self.offered_seconds = time.monotonic() - started
            await asyncio.gather(*tasks)
            self.elapsed = time.monotonic() - started
