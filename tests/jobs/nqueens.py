"""Count and sample N-queens solutions by recursive backtracking, for growing board sizes."""
import sys


def solve(n):
    cols, diag1, diag2 = set(), set(), set()
    board = []
    solutions = []

    def place(row):
        if row == n:
            solutions.append(tuple(board))
            return
        for c in range(n):
            if c in cols or (row - c) in diag1 or (row + c) in diag2:
                continue
            cols.add(c); diag1.add(row - c); diag2.add(row + c); board.append(c)
            place(row + 1)
            cols.remove(c); diag1.remove(row - c); diag2.remove(row + c); board.pop()

    place(0)
    return solutions


def render(sol):
    n = len(sol)
    return "\n".join("".join("Q" if sol[r] == c else "." for c in range(n)) for r in range(n))


def main():
    sys.setrecursionlimit(10_000)
    totals = {}
    for n in range(4, 13):
        sols = solve(n)
        totals[n] = len(sols)
        print(f"n={n}: {len(sols)} solutions, first={sols[0]}", flush=True)
    # a second pass at the largest size, board by board, so the program spends its time deep in recursion
    for rep in range(5):
        sols = solve(11)
        print(f"repeat {rep}: n=11 -> {len(sols)}", flush=True)
    print(render(solve(8)[0]))
    print(f"result: totals={totals}")


if __name__ == "__main__":
    main()
