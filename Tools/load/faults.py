"""The fault injector: while the driver runs, at random moments, one of
- kill -9 a random process of identity, organization, marketplace-link or the console, and start
  it again 1-3 s later (a crash and a supervisor's restart);
- restart the simulator (AWS's side going away and coming back);
- stop organization (SIGSTOP: its connections stay open and nothing answers) for 15-30 s, while
  other faults go on;
- turn on the simulator's throttling for the next 20-60 seller API calls.
The first round has one of each kind, in a random order; after that kinds are drawn at random.
Every fault is logged with its time, for the report.
"""
import asyncio
import json
import random
import time
import urllib.request


KINDS = ("kill", "restart_simulator", "stop_organization", "throttle")


class FaultInjector:

    def __init__(self, system, seconds, seed=1, every=(5, 10), kinds=KINDS):
        self.system, self.seconds, self.every, self.kinds = system, seconds, every, tuple(kinds)
        self.random = random.Random(seed)
        self.log = []  # {"at": seconds since start, "kind", "what"}
        self.pauses = []  # tasks that resume a stopped process

    def note(self, kind, what):
        self.log.append({"at": round(time.monotonic() - self.started, 1), "kind": kind, "what": what})

    async def run(self):
        self.started = time.monotonic()
        kinds = list(self.kinds)
        self.random.shuffle(kinds)
        while True:
            await asyncio.sleep(self.random.uniform(*self.every))
            if time.monotonic() - self.started > self.seconds:
                await asyncio.gather(*self.pauses)
                return
            kind = kinds.pop(0) if kinds else self.random.choice(self.kinds)
            await getattr(self, kind)()
        # (a stopped organization is resumed by its own task, or by heal)

    async def kill(self):
        victims = [p for name in ("identity", "organization", "marketplace-link", "console") for p in self.system.processes[name]
                   if p.running and not p.paused]
        victim = self.random.choice(victims)
        victim.kill()
        down = self.random.uniform(1, 3)
        self.note("kill", f"kill -9 {victim.name}, restarted after {down:.1f} s")
        await asyncio.sleep(down)
        await asyncio.to_thread(victim.start)

    async def restart_simulator(self):
        simulator = self.system.processes["aws-marketplace-sim"][0]
        self.note("restart_simulator", "simulator restarted (SIGTERM, then started again)")
        await asyncio.to_thread(simulator.terminate)
        await asyncio.to_thread(simulator.start)

    async def stop_organization(self):
        victim = self.random.choice([p for p in self.system.processes["organization"] if p.running])
        pause = self.random.uniform(15, 30)
        if any(p.paused for p in self.system.processes["organization"]):
            return await self.kill()  # one stopped at a time: another fault instead
        self.note("stop_organization", f"{victim.name} stopped (SIGSTOP) for {pause:.0f} s")
        victim.pause()

        async def resume_later():
            await asyncio.sleep(pause)
            victim.resume()
        # Other faults go on meanwhile.
        self.pauses.append(asyncio.create_task(resume_later()))

    async def throttle(self):
        count = self.random.randint(20, 60)
        simulator = self.system.processes["aws-marketplace-sim"][0]
        request = urllib.request.Request(simulator.url + "/_sim/throttle", data=json.dumps({"count": count}).encode(),
                                         headers={"content-type": "application/json"}, method="POST")
        try:
            await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
            self.note("throttle", f"simulator throttles the next {count} seller API calls")
        except OSError as error:
            self.note("throttle", f"throttling not turned on ({error})")

    def heal(self):
        """Everything running and answering again, as after the operator's last restart."""
        for process in self.system.all_processes():
            process.resume()
            if not process.running:
                process.start()
