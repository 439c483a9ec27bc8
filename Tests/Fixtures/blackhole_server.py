"""A listening socket that never accepts, with its accept queue already full: a TCP connect to it
hangs (the kernel drops the SYN), as connecting to an unreachable host does. Prints "PORT <n>"."""
import socket
import time

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(0)
port = listener.getsockname()[1]
fillers = []
for _ in range(4):
    filler = socket.socket()
    filler.setblocking(False)
    try:
        filler.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fillers.append(filler)
time.sleep(0.2)
print("PORT", port, flush=True)
time.sleep(120)
