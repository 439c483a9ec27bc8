"""The buyer's journey in a real browser: Debian's headless Chromium, driven by Selenium.

Run by Tests/EndToEndTests/ConsoleBrowserTests.swift against the console, identity,
organization, marketplace-link and aws-marketplace-sim as processes. One scenario per run:

    browser_journey.py SCENARIO --console URL --simulator URL --maildrop DIR [--screenshots DIR]

Exits 0 when every check held; otherwise prints what failed (with the page it saw) and exits 1.
"""
import argparse
import email
import glob
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import Select, WebDriverWait

PASSWORD = "correct horse battery staple"
ARGS = None


class CheckFailed(Exception):
    pass


def check(condition, what, driver=None):
    if not condition:
        page = ""
        if driver is not None:
            page = f"\n  at {driver.current_url}\n  page text: {driver.find_element(By.TAG_NAME, 'body').text[:1500]}"
        raise CheckFailed(what + page)


def browser(javascript=True):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=900,1000",
                 "--no-first-run", "--disable-extensions", "--password-store=basic"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    return driver


def shot(driver, name):
    if ARGS.screenshots:
        os.makedirs(ARGS.screenshots, exist_ok=True)
        driver.save_screenshot(os.path.join(ARGS.screenshots, name + ".png"))


def path_of(driver):
    return urllib.parse.urlparse(driver.current_url).path


def heading(driver):
    return driver.find_element(By.TAG_NAME, "h1").text


def no_full_account(driver, account):
    """The whole 12-digit AWS account id is never on a console page."""
    if driver.current_url.startswith(ARGS.console):
        check(account not in driver.page_source, f"the full AWS account id {account} is on a console page", driver)


def fill(driver, values):
    for name, value in values.items():
        element = driver.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def left_behind(element):
    """A wait condition: `element`'s page has been replaced (chromedriver reports a node of an old
    page in more than one way while the next one loads)."""
    def condition(_):
        try:
            element.is_enabled()
            return False
        except WebDriverException:
            return True
    return condition


def click(driver, element):
    """Clicks a link or button and waits for the page it leads to."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(left_behind(old))


def submit(driver, field):
    """Presses the submit button of the form holding the field named `field`."""
    click(driver, driver.find_element(By.XPATH, f"//form[.//*[@name='{field}']]//button[@type='submit']"))


def wait_for(driver, condition, what, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.2)
    check(False, "timed out waiting for " + what, driver)


def mail(to, subject, containing="", seconds=20):
    """The newest email to `to` whose subject holds `subject` (and body `containing`), from the maildrop."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = []
        for path in glob.glob(os.path.join(ARGS.maildrop, "*.eml")):
            with open(path, encoding="utf-8") as handle:
                message = email.message_from_string(handle.read())
            if to in message["To"] and subject in message["Subject"] and containing in message.get_payload():
                found.append((os.path.getmtime(path), message.get_payload()))
        if found:
            return sorted(found)[-1][1]
        time.sleep(0.2)
    raise CheckFailed(f"no email to {to} about '{subject}' arrived")


def link_in(body, marker):
    match = re.search(r"(https?://\S*" + re.escape(marker) + r"\S*)", body)
    if not match:
        raise CheckFailed(f"no link with {marker} in: {body}")
    return match.group(1)


# MARK: Steps

def aws_subscribe_and_set_up(driver, offer, identity):
    """In the simulator: the offer email's link, sign in as `identity`, subscribe, Set up your account."""
    if offer == ARGS.offer_in_email:
        driver.get(link_in(mail(ARGS.offer_email, "Private offer", containing="/buyer/offers/" + offer), "/buyer/offers/" + offer))
    else:
        driver.get(f"{ARGS.simulator}/buyer/offers/{offer}")
    check(heading(driver) == "Sign in to AWS", "the simulator asks the buyer to sign in", driver)
    click(driver, driver.find_element(By.LINK_TEXT, identity))
    check(heading(driver).startswith("Private offer"), "the offer page", driver)
    shot(driver, "1-aws-offer")
    click(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Accept terms and subscribe']"))
    check(heading(driver).startswith("Subscribed"), "the subscription page", driver)
    click(driver, driver.find_element(By.ID, "setup"))
    # With script the simulator's form submits itself; without, the buyer presses Continue.
    if "/marketplace/" not in driver.current_url and driver.find_elements(By.XPATH, "//button[normalize-space()='Continue']"):
        click(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Continue']"))
    wait_for(driver, lambda: driver.current_url.startswith(ARGS.console), "the console after Set up your account")


def register(driver, name, address):
    if path_of(driver) != "/register":
        click(driver, driver.find_element(By.ID, "create-account"))
    check(heading(driver) == "Create an account", "the registration page", driver)
    fill(driver, {"fullName": name, "email": address, "password": PASSWORD})
    submit(driver, "fullName")
    check(heading(driver) == "Check your email", "the check-your-email page", driver)


def verify_by_link(driver, address):
    driver.get(link_in(mail(address, "Verify your email"), "/verify-email#token="))
    wait_for(driver, lambda: path_of(driver) == "/login", "the verification to finish")
    check("Your email address is verified" in driver.page_source, "the verified notice", driver)


def sign_in(driver, address, password=PASSWORD):
    if path_of(driver) != "/login":
        driver.get(ARGS.console + "/login")
    fill(driver, {"email": address, "password": password})
    submit(driver, "password")


def business_profile(driver):
    wait_for(driver, lambda: path_of(driver) == "/profile", "the business-information page")
    check(heading(driver) == "About your business", "the business-information page", driver)
    fill(driver, {"companyName": "Example Analytics", "companySize": "COMPANY_SIZE_11_TO_50", "country": "DE",
                  "jobTitle": "Data engineer", "useCase": "Product analytics"})
    shot(driver, "4-business-information")
    submit(driver, "companyName")


def new_user(driver, name, address):
    """A new account, verified, signed in, with its business information."""
    driver.get(ARGS.console + "/register")
    register(driver, name, address)
    verify_by_link(driver, address)
    sign_in(driver, address)
    business_profile(driver)


def confirm_and_see_billing(driver, organization, account):
    check(heading(driver) == "Confirm billing through AWS Marketplace", "the confirmation page", driver)
    statement = driver.find_element(By.ID, "statement").text
    check(organization in statement and "********" + account[-4:] in statement and "One contract bills one organization" in statement,
          "the confirmation states what linking changes", driver)
    no_full_account(driver, account)
    shot(driver, "6-confirm")
    click(driver, driver.find_element(By.XPATH, "//button[starts-with(normalize-space(), 'Link billing to')]"))
    wait_for(driver, lambda: path_of(driver).endswith("/billing"), "the billing page")
    # BINDING refreshes itself (a meta refresh: no script needed) until ACTIVE.
    wait_for(driver, lambda: driver.find_element(By.ID, "state").text == "ACTIVE", "the link to become ACTIVE", seconds=30)
    check(driver.find_element(By.ID, "provider").text == "Billed through AWS Marketplace", "billed through AWS Marketplace", driver)
    check(driver.find_element(By.ID, "aws-account").text == "********" + account[-4:], "the masked account", driver)
    check("Billing for " + organization == heading(driver), "the billing page names the organization", driver)
    no_full_account(driver, account)


# MARK: Scenarios

def scenario_new_buyer():
    """A new buyer from the offer email to the billing page; then the same contract again: already linked."""
    account, address = "111111111111", "new.buyer@example.com"
    driver = browser()
    try:
        aws_subscribe_and_set_up(driver, "offer-a", "alice")
        check(path_of(driver) == "/marketplace/onboarding", "the onboarding page after Set up your account", driver)
        check(driver.find_element(By.ID, "aws-account").text == "********1111", "the offer shows the masked account", driver)
        check("seats" in driver.find_element(By.ID, "offer").text, "the offer shows the entitlements", driver)
        no_full_account(driver, account)
        shot(driver, "2-onboarding")
        register(driver, "New Buyer", address)
        shot(driver, "3-check-email")
        verify_by_link(driver, address)
        sign_in(driver, address)
        business_profile(driver)
        wait_for(driver, lambda: path_of(driver) == "/marketplace/link", "the organization step")
        check(heading(driver) == "Choose the organization to bill", "the organization step", driver)
        fill(driver, {"name": "New Buyer Co"})
        shot(driver, "5-choose-organization")
        submit(driver, "name")
        confirm_and_see_billing(driver, "New Buyer Co", account)
        shot(driver, "7-billing")
        cookies = {cookie["name"]: cookie for cookie in driver.get_cookies()}
        check("claim" not in cookies, "the claim cookie is gone once linked")
        # The same subscription's "Set up your account" again: the contract is already linked.
        driver.get(ARGS.simulator + "/buyer/offers/offer-a?as=alice")
        click(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Accept terms and subscribe']"))
        click(driver, driver.find_element(By.ID, "setup"))
        wait_for(driver, lambda: driver.current_url.startswith(ARGS.console), "the console")
        check(heading(driver) == "Already linked", "an already-linked contract gets its own page", driver)
        no_full_account(driver, account)
    finally:
        driver.quit()


def scenario_demo():
    """The demo seed's buyer (what compose/ deploys): offer-demo-1 from its email, as buyer-admin,
    through a new account and organization to ACTIVE billing."""
    account, address = "111122223333", "demo.buyer@example.com"
    driver = browser()
    try:
        aws_subscribe_and_set_up(driver, "offer-demo-1", "buyer-admin")
        check(path_of(driver) == "/marketplace/onboarding", "the onboarding page after Set up your account", driver)
        check(driver.find_element(By.ID, "aws-account").text == "********3333", "the offer shows the masked account", driver)
        register(driver, "Demo Buyer", address)
        verify_by_link(driver, address)
        sign_in(driver, address)
        business_profile(driver)
        wait_for(driver, lambda: path_of(driver) == "/marketplace/link", "the organization step")
        fill(driver, {"name": "Demo Buyer Co"})
        submit(driver, "name")
        confirm_and_see_billing(driver, "Demo Buyer Co", account)
    finally:
        driver.quit()


def scenario_member_and_admin():
    """A user who is only a MEMBER of one organization and ADMIN of another picks the one they administer."""
    account = "222222222222"
    owner, buyer = "org.owner@example.com", "member.buyer@example.com"
    driver = browser()
    try:
        new_user(driver, "Olga Owner", owner)
        wait_for(driver, lambda: path_of(driver) == "/organizations", "the organizations page")
        fill(driver, {"name": "Owner Org"})
        submit(driver, "name")
        wait_for(driver, lambda: heading(driver) == "Owner Org", "the new organization's page")
        owner_org = path_of(driver)
        driver.delete_all_cookies()
        new_user(driver, "Mark Member", buyer)
        wait_for(driver, lambda: path_of(driver) == "/organizations", "the organizations page")
        fill(driver, {"name": "Member Admin Org"})
        submit(driver, "name")
        wait_for(driver, lambda: heading(driver) == "Member Admin Org", "the second organization's page")
        driver.delete_all_cookies()
        # The owner invites the buyer as a MEMBER, by email; the buyer accepts.
        sign_in(driver, owner)
        driver.get(ARGS.console + owner_org)
        fill(driver, {"email": buyer})
        submit(driver, "email")
        check("is invited" in driver.find_element(By.ID, "notice").text, "the invitation notice", driver)
        check("member.buyer@example.com" not in driver.find_element(By.ID, "members").text, "not a member before accepting", driver)
        driver.delete_all_cookies()
        sign_in(driver, buyer)
        driver.get(ARGS.console + "/organizations")
        click(driver, driver.find_element(By.XPATH, "//form[contains(@action, '/accept')]//button"))
        check("Owner Org" in driver.find_element(By.TAG_NAME, "main").text, "the accepted organization is listed", driver)
        driver.delete_all_cookies()

        aws_subscribe_and_set_up(driver, "offer-c", "carol")
        check(path_of(driver) == "/marketplace/onboarding", "onboarding for a signed-out buyer", driver)
        click(driver, driver.find_element(By.ID, "sign-in"))
        sign_in(driver, buyer)
        wait_for(driver, lambda: path_of(driver) == "/marketplace/link", "the organization step after sign-in")
        rows = driver.find_elements(By.CSS_SELECTOR, "label.choice")
        owner_row = next(row for row in rows if "Owner Org" in row.text)
        check("Only an admin can link billing: ask Olga Owner (org.owner@example.com)" in owner_row.text,
              "the MEMBER organization says whom to ask", driver)
        check(not owner_row.find_elements(By.CSS_SELECTOR, "input[type=radio]"), "a MEMBER organization cannot be chosen", driver)
        no_full_account(driver, account)
        shot(driver, "5b-choose-member-and-admin")
        driver.find_element(By.XPATH, "//label[contains(., 'Member Admin Org')]/input[@type='radio']").click()
        click(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Continue']"))
        confirm_and_see_billing(driver, "Member Admin Org", account)
        # The owner's organization, where the buyer is a MEMBER: its billing is refused with a page.
        driver.get(ARGS.console + owner_org + "/billing")
        check(heading(driver) == "Billing is for admins and billing members", "a MEMBER gets a clear 403 page", driver)
    finally:
        driver.quit()


def scenario_signed_in():
    """A buyer already signed in when AWS redirects goes straight to the organization step."""
    account, address = "333333333333", "signed.in@example.com"
    driver = browser()
    try:
        new_user(driver, "Sid Signed", address)
        wait_for(driver, lambda: path_of(driver) == "/organizations", "the organizations page")
        aws_subscribe_and_set_up(driver, "offer-d", "dave")
        wait_for(driver, lambda: path_of(driver) == "/marketplace/link", "the organization step, straight away")
        check(driver.find_element(By.ID, "signed-in-as").text == address, "still signed in", driver)
        fill(driver, {"name": "Signed In Co"})
        submit(driver, "name")
        confirm_and_see_billing(driver, "Signed In Co", account)
    finally:
        driver.quit()


def scenario_refusals():
    """A tampered token, and an IAM identity without the permissions."""
    driver = browser()
    try:
        # A cross-site POST of a token AWS never issued, as a forged "Set up your account" would be.
        form = ("<form method='post' action='" + ARGS.console + "/marketplace/setup'>"
                "<input name='x-amzn-marketplace-token' value='dGFtcGVyZWQtdG9rZW4tbm90LWZyb20tYXdz'>"
                "<button type='submit'>go</button></form>")
        driver.get("data:text/html," + urllib.parse.quote(form))
        click(driver, driver.find_element(By.TAG_NAME, "button"))
        wait_for(driver, lambda: driver.current_url.startswith(ARGS.console), "the console")
        check(heading(driver) == "We could not accept this registration", "a tampered token gets a page that says so", driver)
        check("Set up your account" in driver.find_element(By.ID, "message").text, "and what to do next", driver)
        check(not any(cookie["name"].endswith("claim") for cookie in driver.get_cookies()), "no claim is kept")
        # An IAM identity without the Marketplace permissions: the simulator's refusal page.
        driver.get(ARGS.simulator + "/buyer/offers/offer-b?as=bob")
        check(heading(driver) == "Access denied", "the simulator refuses an identity without the permissions", driver)
        check("aws-marketplace:ViewSubscriptions" in driver.page_source or "AWSMarketplace" in driver.page_source,
              "and names the permissions", driver)
        # No registration at all: the onboarding page says where to start.
        driver.get(ARGS.console + "/marketplace/onboarding")
        check(heading(driver) == "Nothing to link yet", "onboarding without a registration", driver)
    finally:
        driver.quit()


def scenario_no_javascript():
    """The main path with JavaScript off: the verification token is pasted."""
    account, address = "444444444444", "no.script@example.com"
    driver = browser(javascript=False)
    try:
        aws_subscribe_and_set_up(driver, "offer-e", "erin")
        check(path_of(driver) == "/marketplace/onboarding", "the onboarding page", driver)
        register(driver, "Nora Noscript", address)
        token_link = link_in(mail(address, "Verify your email"), "/verify-email#token=")
        driver.get(token_link)
        check(driver.find_element(By.NAME, "token").get_attribute("value") == "", "without script the code is not filled in", driver)
        fill(driver, {"token": token_link.split("#token=")[1]})
        submit(driver, "token")
        wait_for(driver, lambda: path_of(driver) == "/login", "the sign-in page after verifying")
        sign_in(driver, address)
        business_profile(driver)
        wait_for(driver, lambda: path_of(driver) == "/marketplace/link", "the organization step")
        fill(driver, {"name": "No Script Co"})
        submit(driver, "name")
        confirm_and_see_billing(driver, "No Script Co", account)
    finally:
        driver.quit()


def scenario_form_security():
    """Forms without or with a wrong CSRF token are refused and change nothing; cookie flags;
    security headers on every page."""
    address = "careful.user@example.com"
    driver = browser()
    try:
        new_user(driver, "Carl Careful", address)
        wait_for(driver, lambda: path_of(driver) == "/organizations", "the organizations page")
        cookies = {cookie["name"]: cookie for cookie in driver.get_cookies()}
        session = cookies.get("session")
        check(session is not None, "a session cookie")
        check(session["httpOnly"] and session.get("sameSite") == "Lax" and session["path"] == "/",
              f"the session cookie is HttpOnly, SameSite=Lax, Path=/: {session}")
        check(driver.execute_script("return document.cookie") == "", "page script sees no cookie at all")

        for tampering, label in ((
            "document.querySelector(\"form[action='/organizations'] input[name=csrf]\").value = 'A'.repeat(43)", "a wrong token"), (
            "document.querySelector(\"form[action='/organizations'] input[name=csrf]\").remove()", "no token")):
            driver.get(ARGS.console + "/organizations")
            fill(driver, {"name": "Forged Org"})
            driver.execute_script(tampering)
            submit(driver, "name")
            check("Your form expired, please submit it again." in driver.find_element(By.ID, "error-summary").text,
                  f"a form with {label} is refused with a way forward", driver)
            check(driver.find_element(By.NAME, "name").get_attribute("value") == "Forged Org", "the form comes back filled in", driver)
            driver.get(ARGS.console + "/organizations")
            check("Forged Org" not in driver.find_element(By.TAG_NAME, "main").text, f"{label}: nothing was created", driver)
        # Submitting the form again, as the page says, works.
        fill(driver, {"name": "Genuine Org"})
        submit(driver, "name")
        wait_for(driver, lambda: heading(driver) == "Genuine Org", "the organization made by a genuine form")
        # The only ADMIN can neither step down nor leave: the page says why.
        members = driver.find_element(By.ID, "members").text
        check(address in members and "Carl Careful" in members and "ADMIN" in members, "the members, with their emails", driver)
        Select(driver.find_element(By.CSS_SELECTOR, "select[name=role]")).select_by_value("MEMBER")
        click(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Change role']"))
        check("An organization needs at least one admin: make another member ADMIN first." in driver.find_element(By.ID, "error-summary").text,
              "the last-admin rule explained when a role change is refused", driver)
        click(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Remove']"))
        check("An organization needs at least one admin: make another member ADMIN first." in driver.find_element(By.ID, "error-summary").text,
              "the last-admin rule explained when a removal is refused", driver)
        check("ADMIN" in driver.find_element(By.ID, "members").text, "still the ADMIN", driver)
        check(driver.find_element(By.ID, "audit").text.strip() != "", "the activity trail is shown to the admin", driver)

        # Another site's form posting to the console (the browser sends Sec-Fetch-Site: cross-site).
        form = ("<form method='post' action='" + ARGS.console + "/organizations'>"
                "<input name='name' value='Cross Site Org'><button type='submit'>go</button></form>")
        driver.get("data:text/html," + urllib.parse.quote(form))
        click(driver, driver.find_element(By.TAG_NAME, "button"))
        wait_for(driver, lambda: driver.current_url.startswith(ARGS.console), "the console")
        driver.get(ARGS.console + "/organizations")
        check("Cross Site Org" not in driver.find_element(By.TAG_NAME, "main").text, "a cross-site POST changed nothing", driver)
    finally:
        driver.quit()

    # Every page carries the security headers (read with a plain HTTP client).
    pages = ["/login", "/register", "/verify-email", "/reset-password", "/forgot-password", "/resend-verification",
             "/marketplace/onboarding", "/organizations", "/profile", "/marketplace/link", "/no-such-page", "/"]
    opener = urllib.request.build_opener(NoRedirect)
    for page in pages:
        try:
            response = opener.open(ARGS.console + page, timeout=10)
        except urllib.error.HTTPError as answer:
            response = answer
        headers = response.headers
        policy = headers.get("Content-Security-Policy", "")
        check("frame-ancestors 'none'" in policy and "form-action 'self'" in policy and "script-src 'self'" in policy
              and "unsafe-inline" not in policy, f"{page}: a strict Content-Security-Policy, got '{policy}'")
        check(headers.get("X-Content-Type-Options") == "nosniff", f"{page}: X-Content-Type-Options")
        check(headers.get("Referrer-Policy") == "no-referrer", f"{page}: Referrer-Policy")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def record_usage(organization, events):
    """RecordUsage as the product's data plane would call it: HTTP/2 (httpx), its service credential."""
    import httpx
    body = {"events": [{"idempotencyKey": f"browser-{index}", "organizationId": organization, "dimension": dimension,
                        "quantity": quantity, "occurredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                       for index, (dimension, quantity) in enumerate(events)]}
    with httpx.Client(http1=False, http2=True) as client:
        answer = client.post(ARGS.marketplace_link + "/marketplacelink.v1.MarketplaceLinkService/RecordUsage", json=body,
                             headers={"x-service-credential": "usage-reporter:" + ARGS.usage_reporter_secret})
    check(answer.status_code == 200 and answer.json().get("accepted") == len(events), f"RecordUsage took the events: {answer.text}")


def scenario_usage():
    """The billing page shows this month's usage, and each hour's way to AWS Marketplace."""
    account, address = "555555555555", "usage.buyer@example.com"
    driver = browser()
    try:
        new_user(driver, "Una Usage", address)
        wait_for(driver, lambda: path_of(driver) == "/organizations", "the organizations page")
        aws_subscribe_and_set_up(driver, "offer-f", "frank")
        wait_for(driver, lambda: path_of(driver) == "/marketplace/link", "the organization step")
        fill(driver, {"name": "Usage Co"})
        submit(driver, "name")
        confirm_and_see_billing(driver, "Usage Co", account)
        check(driver.find_element(By.ID, "no-usage").text == "No usage recorded this month.", "no usage yet", driver)
        record_usage(path_of(driver).split("/")[2], [("storage", 7), ("storage", 5)])

        def usage_row():
            driver.refresh()
            return driver.find_element(By.ID, "usage-totals").find_elements(By.TAG_NAME, "tr")[1].text
        wait_for(driver, lambda: usage_row().startswith("storage 12"), "the usage on the billing page")
        # The hour is sent to AWS once it ends (the test's hours last a few seconds).
        wait_for(driver, lambda: usage_row() == "storage 12 12", "the usage billed through AWS", seconds=40)
        hours = driver.find_element(By.ID, "usage-hours").text
        check("SENT Billed through AWS Marketplace." in hours, "the hour says it is billed", driver)
        shot(driver, "8-billing-usage")
    finally:
        driver.quit()


SCENARIOS = {
    "new-buyer": scenario_new_buyer,
    "member-and-admin": scenario_member_and_admin,
    "signed-in": scenario_signed_in,
    "refusals": scenario_refusals,
    "no-javascript": scenario_no_javascript,
    "form-security": scenario_form_security,
    "demo": scenario_demo,
    "usage": scenario_usage,
}


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--console", required=True)
    parser.add_argument("--simulator", required=True)
    parser.add_argument("--maildrop", required=True)
    parser.add_argument("--screenshots")
    parser.add_argument("--marketplace-link")
    parser.add_argument("--usage-reporter-secret")
    parser.add_argument("--offer-email", default="buyer@example.com")
    parser.add_argument("--offer-in-email", default="offer-a")
    ARGS = parser.parse_args()
    try:
        SCENARIOS[ARGS.scenario]()
    except CheckFailed as failure:
        print(f"FAILED {ARGS.scenario}: {failure}")
        sys.exit(1)
    print(f"PASSED {ARGS.scenario}")


if __name__ == "__main__":
    main()
