"""The soak: h2load at saturation on identity's GetMe, organization's CheckAdmin and
marketplace-link's GetBillingStatus at once, for a long time, each service's RSS sampled every
few seconds. Access tokens live 10 minutes, so the load runs in rounds of at most 4 minutes,
each with a fresh token.
"""
import json
import os
import re
import subprocess
import threading
import time
import urllib.request


def rpc(url, body, headers):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def h2load(seconds, url, body, headers, work, name):
    path = os.path.join(work, name + ".json")
    with open(path, "w") as file:
        json.dump(body, file)
    argv = ["h2load", "-D", str(seconds), "-c", "4", "-m", "16", "-t", "1", "-d", path, "-H", "content-type: application/json"]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    return subprocess.Popen(argv + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def parse(output):
    total = int(re.search(r"requests: (\d+) total", output).group(1))
    ok = int(re.search(r"status codes: (\d+) 2xx", output).group(1))
    rate = float(re.search(r"finished in [^,]+, ([0-9.]+) req/s", output).group(1))
    return total, ok, rate


def soak(system, buyer, seconds, sample_every=5, warm=60):
    """buyer: a finished journey's record (its session, user and organization). Returns the report."""
    identity = system.processes["identity"][0].url
    organization = system.processes["organization"][0].url
    link = system.processes["marketplace-link"][0].url
    watched = [p for name in ("identity", "organization", "marketplace-link") for p in system.processes[name]]
    samples = []  # (seconds, {name: KiB})
    stop = threading.Event()
    started = time.monotonic()

    def sample():
        while not stop.is_set():
            samples.append((time.monotonic() - started, {p.name: p.rss_kib() for p in watched}))
            stop.wait(sample_every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    totals = {"GetMe": [0, 0, []], "CheckAdmin": [0, 0, []], "GetBillingStatus": [0, 0, []]}
    try:
        left = seconds
        while left > 0:
            round_seconds = int(min(left, 240))
            access = rpc(identity + "/identity.v1.IdentityService/RefreshAccessToken", {"sessionToken": buyer["session"]}, {})["accessToken"]
            bearer = {"authorization": "Bearer " + access}
            runs = {
                "GetMe": h2load(round_seconds, identity + "/identity.v1.IdentityService/GetMe", {}, bearer, system.work, "getme"),
                "CheckAdmin": h2load(round_seconds, organization + "/organization.v1.OrganizationService/CheckAdmin",
                                     {"organizationId": buyer["organization"], "userId": buyer["user"]},
                                     {"x-service-credential": system.credential("marketplace-link")}, system.work, "checkadmin"),
                "GetBillingStatus": h2load(round_seconds, link + "/marketplacelink.v1.MarketplaceLinkService/GetBillingStatus",
                                           {"organizationId": buyer["organization"]}, bearer, system.work, "billing"),
            }
            for name, run in runs.items():
                output = run.communicate()[0]
                try:
                    total, ok, rate = parse(output)
                except AttributeError:
                    raise RuntimeError(f"h2load on {name} printed no result:\n{output[-2000:]}")
                totals[name][0] += total
                totals[name][1] += ok
                totals[name][2].append(rate)
            left -= round_seconds
    finally:
        stop.set()
        sampler.join()
    memory = {}
    for process in watched:
        series = [(at, kib[process.name]) for at, kib in samples if kib.get(process.name)]
        warm_values = [kib for at, kib in series if at >= min(warm, seconds / 2)]
        memory[process.name] = {"start_kib": series[0][1], "warm_kib": warm_values[0], "end_kib": series[-1][1],
                                "max_kib": max(kib for _, kib in series)}
    return {"seconds": seconds, "calls": {name: {"total": t, "ok": ok, "failed": t - ok, "req_per_s": round(sum(r) / len(r))}
                                          for name, (t, ok, r) in totals.items()},
            "rss": memory, "samples": len(samples)}
