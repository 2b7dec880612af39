"""Richards-like: a cooperative scheduler of task objects passing packets (method dispatch,
attribute access, small objects, linked lists)."""

from __future__ import annotations

NAME = "scheduler"
ROUNDS = 10
PACKETS = 2_500


class Packet:
    __slots__ = ("data", "kind", "link", "owner")

    def __init__(self, owner: int, kind: int, link: Packet | None = None) -> None:
        self.owner, self.kind, self.link = owner, kind, link
        self.data = [0, 0, 0, 0]


class Task:
    def __init__(self, ident: int, priority: int, scheduler: Scheduler) -> None:
        self.ident, self.priority, self.scheduler = ident, priority, scheduler
        self.queue: Packet | None = None
        self.held = False
        self.handled = 0

    def receive(self, packet: Packet) -> None:
        packet.link = None
        if self.queue is None:
            self.queue = packet
        else:
            tail = self.queue
            while tail.link is not None:
                tail = tail.link
            tail.link = packet

    def take(self) -> Packet | None:
        packet = self.queue
        if packet is not None:
            self.queue = packet.link
        return packet

    def runnable(self) -> bool:
        return self.queue is not None and not self.held

    def step(self) -> None:
        raise NotImplementedError


class Worker(Task):
    def __init__(self, ident: int, priority: int, scheduler: Scheduler) -> None:
        super().__init__(ident, priority, scheduler)
        self.counter = 0
        self.destination = 1

    def step(self) -> None:
        packet = self.take()
        if packet is None:
            return
        self.destination = 2 if self.destination == 1 else 1
        for i in range(4):
            self.counter = (self.counter + 7) % 26
            packet.data[i] = self.counter
        self.handled += 1
        self.scheduler.send(packet, self.destination)


class Handler(Task):
    def __init__(self, ident: int, priority: int, scheduler: Scheduler, device: int) -> None:
        super().__init__(ident, priority, scheduler)
        self.device = device

    def step(self) -> None:
        packet = self.take()
        if packet is None:
            return
        packet.kind = sum(packet.data) % 3
        self.handled += 1
        self.scheduler.send(packet, self.device)


class Device(Task):
    def step(self) -> None:
        packet = self.take()
        if packet is None:
            return
        self.held = packet.kind == 2 and self.handled % 5 == 0
        self.handled += 1
        self.scheduler.send(packet, 0)
        if self.held:
            self.scheduler.release(self.ident)


class Source(Task):
    def __init__(self, ident: int, priority: int, scheduler: Scheduler, packets: int) -> None:
        super().__init__(ident, priority, scheduler)
        self.remaining = packets

    def runnable(self) -> bool:
        return self.remaining > 0 or self.queue is not None

    def step(self) -> None:
        back = self.take()
        if back is not None:
            self.handled += 1
        if self.remaining > 0:
            self.remaining -= 1
            self.scheduler.send(Packet(self.ident, self.remaining % 3), 3)


class Scheduler:
    def __init__(self, packets: int) -> None:
        self.tasks: list[Task] = []
        self.tasks.append(Source(0, 1, self, packets))
        self.tasks.append(Handler(1, 3, self, 4))
        self.tasks.append(Handler(2, 3, self, 5))
        self.tasks.append(Worker(3, 2, self))
        self.tasks.append(Device(4, 4, self))
        self.tasks.append(Device(5, 4, self))
        self.by_priority = sorted(self.tasks, key=lambda t: -t.priority)
        self.switches = 0

    def send(self, packet: Packet, to: int) -> None:
        packet.owner = to
        self.tasks[to].receive(packet)

    def release(self, ident: int) -> None:
        self.tasks[ident].held = False

    def run(self) -> int:
        busy = True
        while busy:
            busy = False
            for task in self.by_priority:
                if task.runnable():
                    task.step()
                    self.switches += 1
                    busy = True
                    break
        return self.switches + sum(t.handled for t in self.tasks)


def bench() -> object:
    return [Scheduler(PACKETS + r).run() for r in range(ROUNDS)]
