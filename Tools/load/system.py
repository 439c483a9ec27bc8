"""The system under load, as processes on loopback: aws-marketplace-sim (seeded with a buyer
account and an offer per journey), identity, organization, marketplace-link and the console,
each service once on SQLite or `replicas` times on one PostgreSQL server started here. Any
process can be killed (SIGKILL), paused (SIGSTOP) and started again on its port; `stop()` ends
everything this object started.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sqlite3
import time
import urllib.request

SELLER_KEY, SELLER_SECRET = "AKIDLOADSELLER0000001", "load-seller-secret-not-for-aws"
PRODUCT = "prod-load-committed"
DIMENSIONS = ("compute_hours", "storage_gb_hours")
SERVICES = ("identity", "organization", "marketplace-link")
# Credentials the tools present: the driver stands in for the console (a front end that passes
# on each buyer's address), the usage reporter for the product's data plane, the soak for
# marketplace-link (the caller CheckAdmin serves).
CALLERS = ("identity", "organization", "marketplace-link", "console", "load-driver", "usage-reporter")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def account(buyer):
    return f"7{buyer:011d}"


def write_seed(path, buyers):
    """A buyer account, an identity allowed to subscribe and an offer to it per journey: an AWS
    account links one organization, once."""
    offers = [{"id": f"offer-{i}", "buyerAccountId": account(i), "committedAmountUSD": 100000, "termMonths": 12,
               "dimensions": {"committed_spend_usd": 100000, "compute_hours": 50000, "storage_gb_hours": 2000000},
               "expiresAt": "2030-01-01T00:00:00Z"} for i in range(buyers)]
    accounts = [{"accountId": account(i), "email": f"aws-buyer{i}@example.com",
                 "identities": [{"name": f"buyer{i}", "managedPolicies": ["AWSMarketplaceRead-only", "AWSMarketplaceManageSubscriptions"],
                                 "actions": []}]} for i in range(buyers)]
    seed = {"sellerKeys": [{"accessKeyId": SELLER_KEY, "secretAccessKey": SELLER_SECRET}],
            "product": {"code": PRODUCT, "name": "Cloud Database - Committed Contract"}, "offers": offers, "buyers": accounts}
    with open(path, "w") as file:
        json.dump(seed, file)


class Process:
    """One executable on a fixed port: started, killed, paused and started again."""

    def __init__(self, name, argv, env, port, log):
        self.name, self.argv, self.env, self.port, self.log = name, argv, env, port, log
        self.popen = None
        self.paused = False
        self.starts = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_within=60):
        self.starts += 1
        with open(self.log, "a") as log:
            log.write(f"--- start {self.starts} at {time.strftime('%H:%M:%S')}\n")
            log.flush()
            self.popen = subprocess.Popen(self.argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.paused = False
        self.wait_ready(ready_within)

    def wait_ready(self, within):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode} while starting; see {self.log}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready on port {self.port} within {within} s; see {self.log}")

    @property
    def running(self):
        return self.popen is not None and self.popen.poll() is None

    def kill(self):
        """SIGKILL: no drain, no clean-up; what a crash or an OOM kill leaves."""
        if self.running:
            self.popen.kill()  # SIGKILL ends a stopped process too
            self.popen.wait()
        self.paused = False

    def terminate(self, within=20):
        """SIGTERM: the service drains, then exits."""
        if self.running:
            if self.paused:
                self.resume()
            self.popen.terminate()
            try:
                self.popen.wait(within)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def pause(self):
        if self.running and not self.paused:
            self.popen.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.running and self.paused:
            self.popen.send_signal(signal.SIGCONT)
            self.paused = False

    def rss_kib(self):
        try:
            with open(f"/proc/{self.popen.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None


class Postgres:
    """A PostgreSQL server of our own in `directory`, as the `postgres` user when run as root."""

    def __init__(self, directory, port):
        self.directory, self.port = directory, port
        self.bin = sorted((os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")),
                          key=lambda path: int(path.split("/")[-2]))[-1]
        self.as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] if os.getuid() == 0 else []
        self.popen = None

    def start(self):
        os.makedirs(self.directory, exist_ok=True)
        if os.getuid() == 0:
            os.chmod(os.path.dirname(self.directory), 0o755)
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(self.as_postgres + [self.bin + "/initdb", "-D", self.directory + "/data", "-U", "postgres", "-A", "trust", "-E", "UTF8"],
                       check=True, stdout=subprocess.DEVNULL)
        with open(self.directory + "/postgres.log", "a") as log:
            self.popen = subprocess.Popen(
                self.as_postgres + [self.bin + "/postgres", "-D", self.directory + "/data", "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                                    "-k", self.directory, "-c", "max_connections=400"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(300):
            if subprocess.run([self.bin + "/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start; see " + self.directory + "/postgres.log")

    def create(self, database):
        subprocess.run([self.bin + "/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database], check=True)
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def query(self, database, sql):
        """Rows as lists of strings (psql's unaligned output)."""
        out = subprocess.run([self.bin + "/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-AtX",
                              "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def stop(self):
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()


class System:
    """Every process of the journey, wired as Tools/dev/run-local.sh wires them."""

    def __init__(self, bin_dir, work, backend="sqlite", replicas=1, buyers=1000, metering_hour=20):
        if backend == "sqlite" and replicas != 1:
            raise ValueError("SQLite keeps one process per service; use --backend postgres for replicas")
        self.bin, self.work, self.backend, self.replicas = bin_dir, work, backend, replicas
        self.buyers, self.metering_hour = buyers, metering_hour
        self.maildrop = os.path.join(work, "maildrop")
        self.secrets = {name: os.urandom(16).hex() for name in CALLERS}
        self.processes = {}  # name -> [Process] (replicas)
        self.postgres = None
        self.database_urls = {}

    def trusted(self):
        return ",".join(f"{name}={hashlib.sha256(secret.encode()).hexdigest()}" for name, secret in self.secrets.items())

    def credential(self, name):
        return f"{name}:{self.secrets[name]}"

    def urls(self, name):
        return ",".join(process.url for process in self.processes[name])

    def all_processes(self):
        return [process for group in self.processes.values() for process in group]

    def start(self):
        os.makedirs(self.work, exist_ok=True)
        seed = os.path.join(self.work, "seed.json")
        write_seed(seed, self.buyers)
        if self.backend == "postgres":
            self.postgres = Postgres(os.path.join(self.work, "pg"), free_port())
            self.postgres.start()
            for name in SERVICES:
                self.database_urls[name] = self.postgres.create(name)
        ports = {name: [free_port() for _ in range(self.replicas)] for name in SERVICES}
        sim_port, console_port = free_port(), free_port()
        urls = {name: ",".join(f"http://127.0.0.1:{port}" for port in ports[name]) for name in SERVICES}
        sim_url, console_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{console_port}"
        trusted = self.trusted()

        def service(name, index, extra, env=None):
            argv = [os.path.join(self.bin, name), "--port", str(ports[name][index]), "--data-dir", os.path.join(self.work, f"{name}-{index}"),
                    "--service-secret", self.secrets[name], "--trusted-services", trusted, "--log-level", "notice"]
            if self.backend == "postgres":
                argv += ["--database-url", self.database_urls[name]]
            return Process(f"{name}-{index}" if self.replicas > 1 else name, argv + extra, env or {}, ports[name][index],
                           os.path.join(self.work, f"{name}-{index}.log"))

        self.processes["aws-marketplace-sim"] = [Process(
            "aws-marketplace-sim",
            [os.path.join(self.bin, "aws-marketplace-sim"), "--port", str(sim_port), "--data-dir", os.path.join(self.work, "sim"), "--seed", seed,
             "--notification-url", urls["marketplace-link"].split(",")[0] + "/marketplace/sns", "--maildrop-dir", "",
             "--fulfillment-url", console_url + "/marketplace/setup", "--metering-hour-seconds", str(self.metering_hour),
             "--log-level", "warning"], {}, sim_port, os.path.join(self.work, "aws-marketplace-sim.log"))]
        self.processes["identity"] = [service("identity", i, ["--scrypt-log-n", "12", "--maildrop-dir", self.maildrop,
                                                              "--public-base-url", console_url]) for i in range(self.replicas)]
        self.processes["organization"] = [service("organization", i, ["--identity-url", urls["identity"]]) for i in range(self.replicas)]
        aws = {"AWS_ACCESS_KEY_ID": SELLER_KEY, "AWS_SECRET_ACCESS_KEY": SELLER_SECRET}
        self.processes["marketplace-link"] = [service(
            "marketplace-link", i,
            ["--identity-url", urls["identity"], "--organization-url", urls["organization"], "--aws-marketplace-endpoint", sim_url,
             "--product-code", PRODUCT, "--sns-trusted-origins", sim_url, "--metered-dimensions", ",".join(DIMENSIONS),
             "--metering-hour-seconds", str(self.metering_hour)], aws) for i in range(self.replicas)]
        self.processes["console"] = [Process(
            "console",
            [os.path.join(self.bin, "console"), "--port", str(console_port), "--service-secret", self.secrets["console"],
             "--identity-url", urls["identity"], "--organization-url", urls["organization"], "--marketplace-link-url", urls["marketplace-link"],
             "--public-base-url", console_url, "--log-level", "notice"], {}, console_port, os.path.join(self.work, "console.log"))]
        order = ["identity", "organization", "marketplace-link", "console", "aws-marketplace-sim"]
        for name in order:
            for process in self.processes[name]:
                process.start()

    # What the invariant checker reads.

    def query(self, service, sql):
        """Rows (as lists of strings, NULL as "") of `sql` against a service's database."""
        if self.backend == "postgres":
            return self.postgres.query(service, sql)
        path = os.path.join(self.work, f"{service}-0", f"{service}.sqlite")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            return [["" if value is None else str(value) for value in row] for row in db.execute(sql)]

    def stop(self):
        for process in self.all_processes():
            try:
                process.terminate()
            except Exception:  # stopping the rest matters more than one process's state
                process.kill()
        if self.postgres:
            self.postgres.stop()
