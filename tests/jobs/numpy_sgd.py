"""Logistic regression trained with mini-batch SGD on a synthetic data set."""
import numpy as np


def make_data(rng, n, d):
    X = rng.normal(size=(n, d))
    true_w = rng.normal(size=d)
    logits = X @ true_w + 0.3 * rng.normal(size=n)
    y = (logits > 0).astype(np.float64)
    return X, y, true_w


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def loss_and_grad(w, b, X, y, l2):
    p = sigmoid(X @ w + b)
    eps = 1e-12
    loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)) + 0.5 * l2 * np.dot(w, w)
    err = p - y
    gw = X.T @ err / len(y) + l2 * w
    gb = err.mean()
    return loss, gw, gb


def accuracy(w, b, X, y):
    return float(((sigmoid(X @ w + b) > 0.5) == (y > 0.5)).mean())


def main():
    rng = np.random.default_rng(1234)
    X, y, true_w = make_data(rng, 40000, 30)
    split = 32000
    Xtr, ytr, Xte, yte = X[:split], y[:split], X[split:], y[split:]
    w = np.zeros(X.shape[1])
    b = 0.0
    lr, l2, batch = 0.1, 1e-4, 32
    history = []
    for epoch in range(40):
        order = rng.permutation(split)
        for start in range(0, split, batch):
            idx = order[start:start + batch]
            _, gw, gb = loss_and_grad(w, b, Xtr[idx], ytr[idx], l2)
            w -= lr * gw
            b -= lr * gb
        lr *= 0.95
        loss, _, _ = loss_and_grad(w, b, Xtr, ytr, l2)
        history.append(loss)
        print(f"epoch {epoch:2d} loss {loss:.6f} test_acc {accuracy(w, b, Xte, yte):.4f}", flush=True)
    cos = float(w @ true_w / (np.linalg.norm(w) * np.linalg.norm(true_w)))
    print(f"result: final_loss={history[-1]:.6f} acc={accuracy(w, b, Xte, yte):.4f} cos={cos:.4f}")


if __name__ == "__main__":
    main()
