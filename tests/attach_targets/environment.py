"""Environment changes made by the script before the move (os.environ) hold in the new
process, for the script and for the children it starts."""
import os
import subprocess
import sys
import time

os.environ["PT_KEEP"] = "kept value"
os.environ["PT_GONE"] = "x"
del os.environ["PT_GONE"]
os.chdir(os.path.dirname(os.path.abspath(__file__)))
print(f"started pid={os.getpid()}", flush=True)
for round_ in range(40):
    time.sleep(0.01)
    print(f"round {round_} {os.environ.get('PT_KEEP')} pid={os.getpid()}", flush=True)
child = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('PT_KEEP'), 'PT_GONE' in os.environ)"],
                       capture_output=True, text=True)
print(child.stdout.strip(), "PT_GONE" in os.environ, os.path.basename(os.getcwd()), flush=True)
print(f"done pid={os.getpid()}", flush=True)
