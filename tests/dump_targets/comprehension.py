"""The main thread parked inside a comprehension at module level (3.12+ inlines it into
the module frame as hidden fast locals), a class body parked in its own comprehension in
another thread, a thread started with `_thread` running Python code (threading does not
name it), and one running only C code (not listed, as in sys._current_frames())."""
import _thread
import threading
import time

import _selfreport


def raw(tag):
    own = tag * 2
    time.sleep(3600)


def class_thread():
    class Body:
        attr = 1
        items = [time.sleep(3600) for k in range(1)]


_thread.start_new_thread(raw, ("raw",))
_thread.start_new_thread(time.sleep, (3600,))
threading.Thread(target=class_thread, name="class-body", daemon=True).start()
top = "module"
_selfreport.start(3, {"c_only_threads": 1})
values = [time.sleep(3600) for x in ["only"]]
