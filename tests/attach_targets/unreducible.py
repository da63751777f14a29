"""A program holding an object of a C type whose reduce raises: attach must refuse,
naming it, and leave the program running exactly as before (nothing left in sys)."""
import os
import sys
import time

import numpy as np


class Stubborn(np.ndarray):
    def __reduce_ex__(self, protocol):
        raise RuntimeError("not today")


held = np.zeros(3).view(Stubborn)
print(f"started pid={os.getpid()}", flush=True)
for i in range(60):
    time.sleep(0.01)
    print(f"tick {i} pid={os.getpid()}", flush=True)
print("left behind:", [k for k in vars(sys) if k.startswith("_pyteleport_attach")], flush=True)
