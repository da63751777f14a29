import numpy as np
from pyteleport import tp_dummy
def main():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    view_sum = float(a.sum())
    tp_dummy()
    print(a.dtype, a.shape, a[2, 3], view_sum, (a * 2).sum())
main()
