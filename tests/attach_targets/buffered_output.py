"""Output written without flushing: to a file or a pipe, stdout is block-buffered, so at
any moment some of it sits in the program's buffer. A checkpoint that ends the program
and a restore must together print all of it, once."""
import os
import time

print(f"started pid={os.getpid()}", flush=True)
for i in range(300):
    print(f"line {i} " + "x" * 40)
    time.sleep(0.005)
print("done")
