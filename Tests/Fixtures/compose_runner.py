"""Runs compose/compose.yaml's default profile as processes on this machine, exactly as written:
each service's image entrypoint (the executable), command, environment (interpolated as Compose
does, with the image's ENV under it), secret files under /run/secrets, volumes, healthcheck command
and start order (depends_on with service_healthy). No container engine runs here, so:

- each service host name is mapped to a loopback address of its own (127.0.0.2, ...): URLs naming a
  service point there, and HOST=0.0.0.0 binds that address only;
- container paths (volumes, secrets, the files the Dockerfile puts in the image) are mapped to
  directories under --work;
- published ports are reached on the service's own address.

Every environment variable must be one the executable's --help names (a typo would otherwise be
ignored). Then the journey runs in headless Chromium (browser_journey.py's `demo` scenario) through
the console and the simulator, and every service is stopped with SIGTERM and must exit 0.

    compose_runner.py --compose compose/compose.yaml --bin DIR --work DIR

Exits 0 when everything held; otherwise says what failed (with the services' logs) and exits 1.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class Failed(Exception):
    pass


def interpolate(value, variables):
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1) or match.group(4), match.group(2), match.group(3)
        current = variables.get(name)
        if operator in (":-", "-"):
            if current is None or (operator == ":-" and current == ""):
                return interpolate(argument, variables)
            return current
        if operator in (":?", "?"):
            if current is None or (operator == ":?" and current == ""):
                raise Failed(f"required variable {name} is not set: {argument}")
            return current
        return current or ""

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", replace, value)


def read_env_file(path):
    variables = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                variables[key] = value
    return variables


def dockerfile_facts(path):
    """The image's ENV, entrypoint and the files it copies into the image from the repository."""
    text = open(path, encoding="utf-8").read()
    runtime = text.split("\nFROM debian", 1)[1]
    env = {}
    for line in re.findall(r"^ENV (.+)$", runtime, re.M):
        for pair in line.split():
            key, value = pair.split("=", 1)
            env[key] = value
    copies = {}
    for source, target in re.findall(r"^COPY (?!--from)(\S+) (\S+)$", runtime, re.M):
        copies[target] = os.path.join(REPO, source)
    entrypoint = re.search(r'^ENTRYPOINT \["([^"]+)"\]', runtime, re.M).group(1)
    return env, copies, entrypoint


class Service:
    def __init__(self, name, spec, address):
        self.name, self.spec, self.address = name, spec, address
        self.process = None
        self.log_path = None

    @property
    def product(self):
        return self.spec["build"]["args"]["PRODUCT"]


class Runner:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.project = os.path.join(self.work, "project")
        self.bin = os.path.abspath(args.bin)
        self.services = {}
        self.started = []

    # MARK: Preparing

    def load(self):
        compose_dir = os.path.dirname(os.path.abspath(self.args.compose))
        # The project directory: a copy of compose/ without secrets, given its own secrets by make-secrets.sh.
        os.makedirs(self.project, exist_ok=True)
        subprocess.run([os.path.join(compose_dir, "make-secrets.sh"), self.project], check=True, stdout=subprocess.DEVNULL)
        raw = yaml.safe_load(open(self.args.compose, encoding="utf-8"))
        default = sorted(name for name, spec in raw["services"].items() if "profiles" not in spec)
        self.addresses = {name: f"127.0.0.{index + 2}" for index, name in enumerate(default)}
        variables = read_env_file(os.path.join(self.project, ".env"))
        # The published URLs, as this machine's browser reaches them.
        variables["CONSOLE_PUBLIC_URL"] = f"http://{self.addresses['console']}:{self.published(raw, 'console')}"
        variables["SIMULATOR_PUBLIC_URL"] = f"http://{self.addresses['aws-marketplace-sim']}:{self.published(raw, 'aws-marketplace-sim')}"
        self.variables = variables
        self.compose = interpolate(raw, variables)
        for name in default:
            self.services[name] = Service(name, self.compose["services"][name], self.addresses[name])
        self.image_env, self.image_files, self.entrypoint = dockerfile_facts(
            os.path.join(compose_dir, self.compose["services"][default[0]]["build"]["dockerfile"].split("/")[-1]))

    @staticmethod
    def published(raw, name):
        host, container = str(raw["services"][name]["ports"][0]).split(":")
        if host != container:
            raise Failed(f"{name} publishes {host}:{container}; this runner reaches it on its own address, so the ports must match")
        return host

    def container_paths(self, service):
        """Container path -> host path, for this service's volumes, secrets and image files."""
        paths = {}
        for mount in service.spec.get("volumes", []):
            volume, target = mount.split(":")[:2]
            if volume not in self.compose.get("volumes", {}):
                raise Failed(f"{service.name}: volume {volume} is not declared at the top level")
            host = os.path.join(self.work, "volumes", volume)
            os.makedirs(host, mode=0o700, exist_ok=True)
            paths[target] = host
        for secret in service.spec.get("secrets", []):
            declared = self.compose.get("secrets", {}).get(secret)
            if declared is None:
                raise Failed(f"{service.name}: secret {secret} is not declared at the top level")
            source = os.path.join(self.project, declared["file"])
            if not os.path.isfile(source):
                raise Failed(f"{service.name}: secret file {declared['file']} does not exist (make-secrets.sh makes it)")
            paths[f"/run/secrets/{secret}"] = source
        for target, source in self.image_files.items():
            paths[target] = source
        paths[f"/usr/local/bin/{service.product}"] = os.path.join(self.bin, service.product)
        paths[self.entrypoint] = os.path.join(self.bin, service.product)
        return paths

    def translate(self, service, value, paths):
        """A value as this machine needs it: service host names to their addresses, container paths to host paths."""
        for name, address in self.addresses.items():
            value = re.sub(r"(?<=//)" + re.escape(name) + r"(?=[:/]|$)", address, value)
        for target in sorted(paths, key=len, reverse=True):
            if value == target or value.startswith(target + "/"):
                return paths[target] + value[len(target):]
        return value

    def environment(self, service):
        paths = self.container_paths(service)
        declared = dict(self.image_env)
        declared.update({key: str(value) for key, value in (service.spec.get("environment") or {}).items()})
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
        for key, value in declared.items():
            env[key] = self.translate(service, value, paths)
        # Inside its container the service listens on every interface; here, on its own loopback address only.
        if env.get("HOST") in ("0.0.0.0", "::"):
            env["HOST"] = service.address
        return env, paths

    def check_variables_are_known(self, service):
        """Every variable set for the service is one its executable's help names."""
        binary = os.path.join(self.bin, service.product)
        help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
        known = set(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", help_text))
        variables = set(self.image_env) | set((service.spec.get("environment") or {}).keys())
        unknown = sorted(name for name in variables if name not in known)
        if unknown:
            raise Failed(f"{service.name}: {binary} does not know {', '.join(unknown)} (its --help names every variable it reads)")

    # MARK: Running

    def start(self, service):
        for dependency, condition in (service.spec.get("depends_on") or {}).items():
            if dependency not in self.services:
                raise Failed(f"{service.name} depends on {dependency}, which is not in the default profile")
            if condition.get("condition") == "service_healthy":
                self.wait_healthy(self.services[dependency])
        env, paths = self.environment(service)
        entry = self.translate(service, self.entrypoint, paths)
        command = [entry] + [self.translate(service, str(part), paths) for part in (service.spec.get("command") or [])]
        workdir = paths.get("/data", self.work)
        service.log_path = os.path.join(self.work, f"{service.name}.log")
        log = open(service.log_path, "w")
        print(f"starting {service.name} on {service.address}: {' '.join(command)}", flush=True)
        service.process = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        service.env, service.paths = env, paths
        self.started.append(service)

    def healthy_once(self, service):
        test = service.spec["healthcheck"]["test"]
        if test[0] != "CMD":
            raise Failed(f"{service.name}: the healthcheck must be exec form (CMD): the image has no shell tools")
        # The paths worked out when the service started: a check every few seconds needs no new I/O.
        command = [self.translate(service, part, service.paths) for part in test[1:]]
        result = subprocess.run(command, env=service.env, capture_output=True, text=True, timeout=30)
        return result.returncode == 0, result.stderr.strip()

    def wait_healthy(self, service):
        check = service.spec["healthcheck"]
        interval = self.seconds(check.get("interval", "30s"))
        attempts = int(check.get("retries", 3)) + int(self.seconds(check.get("start_period", "0s")) / max(interval, 0.1))
        last = ""
        for _ in range(attempts + 1):
            if service.process.poll() is not None:
                raise Failed(f"{service.name} exited with {service.process.returncode} before it was healthy")
            healthy, last = self.healthy_once(service)
            if healthy:
                return
            time.sleep(interval)
        raise Failed(f"{service.name} never passed its healthcheck: {last}")

    @staticmethod
    def seconds(text):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", str(text))
        number, unit = float(match.group(1)), match.group(2)
        return number / 1000 if unit == "ms" else number * 60 if unit == "m" else number

    def order(self):
        ordered, seen = [], set()

        def visit(name, path):
            if name in path:
                raise Failed(f"depends_on cycle: {' -> '.join(path + [name])}")
            if name in seen:
                return
            for dependency in (self.services[name].spec.get("depends_on") or {}):
                visit(dependency, path + [name])
            seen.add(name)
            ordered.append(self.services[name])

        for name in sorted(self.services):
            visit(name, [])
        return ordered

    def journey(self):
        console = self.variables["CONSOLE_PUBLIC_URL"]
        simulator = self.variables["SIMULATOR_PUBLIC_URL"]
        maildrop = os.path.join(self.work, "volumes", "maildrop")
        result = subprocess.run(
            [sys.executable, "-u", os.path.join(HERE, "browser_journey.py"), "demo", "--console", console, "--simulator", simulator,
             "--maildrop", maildrop, "--offer-email", "buyer@example.com", "--offer-in-email", "offer-demo-1"],
            capture_output=True, text=True, timeout=240)
        print(result.stdout, result.stderr, flush=True)
        if result.returncode != 0:
            raise Failed("the journey through the compose deployment failed")

    def stop(self):
        failures = []
        for service in reversed(self.started):
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in reversed(self.started):
            try:
                code = service.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                service.process.kill()
                code = "killed after 20 s"
            if code != 0:
                failures.append(f"{service.name} exited with {code} on SIGTERM")
        return failures

    def logs(self):
        for service in self.started:
            print(f"---- {service.name} log (last lines)")
            print("".join(open(service.log_path).readlines()[-30:]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compose", required=True)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    runner = Runner(args)
    failures = []
    try:
        runner.load()
        for service in runner.services.values():
            runner.check_variables_are_known(service)
        for service in runner.order():
            runner.start(service)
        for service in runner.started:
            runner.wait_healthy(service)
        print("every service is healthy: " + ", ".join(f"{s.name} {s.address}" for s in runner.started), flush=True)
        runner.journey()
    except Failed as failure:
        failures.append(str(failure))
    finally:
        failures += runner.stop()
    if failures:
        runner.logs()
        print("FAILED: " + "; ".join(failures))
        return 1
    print("compose deployment: every service started as written, healthy, walked through and stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
