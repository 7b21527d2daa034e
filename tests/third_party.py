"""Loss and test functions written the way other projects write them (plain NumPy, their own idioms:
len(x), sum() over arrays, unpacking, x.dot, in-place -=, default arguments, np.arange weights, lists of
parameters), for tests/test_third_party.py. None of them was written for diffc."""


import numpy as np


def ackley(x, a=20, b=0.2, c=2 * np.pi):
    d = len(x)
    sum1 = np.sum(x ** 2)
    sum2 = np.sum(np.cos(c * x))
    return -a * np.exp(-b * np.sqrt(sum1 / d)) - np.exp(sum2 / d) + a + np.exp(1)

def rastrigin(x):
    n = x.size
    return 10 * n + sum(x ** 2 - 10 * np.cos(2 * np.pi * x))

def griewank(x):
    i = np.arange(1, len(x) + 1)
    return 1 + np.sum(x ** 2) / 4000 - np.prod(np.cos(x / np.sqrt(i)))

def levy(x):
    w = 1 + (x - 1) / 4
    term1 = np.sin(np.pi * w[0]) ** 2
    term3 = (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2)
    wi = w[:-1]
    s = np.sum((wi - 1) ** 2 * (1 + 10 * np.sin(np.pi * wi + 1) ** 2))
    return term1 + s + term3

def michalewicz(x, m=10):
    i = np.arange(1, len(x) + 1)
    return -np.sum(np.sin(x) * np.sin(i * x ** 2 / np.pi) ** (2 * m))

def schwefel(x):
    d = len(x)
    return 418.9829 * d - np.sum(x * np.sin(np.sqrt(np.abs(x))))

def styblinski_tang(x):
    return 0.5 * np.sum(x ** 4 - 16 * x ** 2 + 5 * x)

def rosenbrock(x):
    return sum(100.0 * (x[1:] - x[:-1] ** 2.0) ** 2.0 + (1 - x[:-1]) ** 2.0)

def zakharov(x):
    d = len(x)
    ii = np.arange(1.0, d + 1)
    s2 = np.sum(0.5 * ii * x)
    return np.sum(x ** 2) + s2 ** 2 + s2 ** 4

def dixon_price(x):
    n = len(x)
    j = np.arange(2, n + 1)
    x2 = 2 * x ** 2
    return sum(j * (x2[1:] - x[:-1]) ** 2) + (x[0] - 1) ** 2

def trid(x):
    return np.sum((x - 1) ** 2) - np.sum(x[1:] * x[:-1])

def perm(x, b=0.5):
    d = len(x)
    j = np.arange(1, d + 1)
    total = 0
    for i in range(1, d + 1):
        total += np.sum((j ** i + b) * ((x / j) ** i - 1)) ** 2
    return total

def softmax_xent(W, X, y):
    logits = X @ W
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(y)), y]))

def mlp(params, X, y):
    W1, b1, W2, b2 = params
    h = np.tanh(X.dot(W1) + b1)
    out = h.dot(W2) + b2
    return np.mean((out.ravel() - y) ** 2)

def gaussian_nll(mu, log_sigma, x):
    sigma = np.exp(log_sigma)
    return np.sum(0.5 * np.log(2 * np.pi) + log_sigma + 0.5 * ((x - mu) / sigma) ** 2)

def huber(w, X, y, delta=1.0):
    r = X @ w - y
    return np.mean(np.where(np.abs(r) <= delta, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta)))

def lasso_smooth(w, X, y, lam=0.1):
    return 0.5 * np.linalg.norm(X @ w - y) ** 2 + lam * np.sum(np.sqrt(w ** 2 + 1e-8))

def logsumexp_manual(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))

def powell(x):
    x1, x2, x3, x4 = x[0::4], x[1::4], x[2::4], x[3::4]
    return np.sum((x1 + 10 * x2) ** 2 + 5 * (x3 - x4) ** 2 + (x2 - 2 * x3) ** 4 + 10 * (x1 - x4) ** 4)

def rotated_hyper_ellipsoid(x):
    return np.sum(np.cumsum(x) ** 2)

def sum_squares(x):
    return np.sum(np.arange(1, len(x) + 1) * x ** 2)

def bukin6(x):
    return 100 * np.sqrt(np.abs(x[1] - 0.01 * x[0] ** 2)) + 0.01 * np.abs(x[0] + 10)

def beale(x):
    x1, x2 = x
    return (1.5 - x1 + x1 * x2) ** 2 + (2.25 - x1 + x1 * x2 ** 2) ** 2 + (2.625 - x1 + x1 * x2 ** 3) ** 2

def booth(xy):
    x, y = xy[0], xy[1]
    return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2

def himmelblau(p):
    x, y = p
    return (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2

def matyas(x):
    return 0.26 * (x[0] ** 2 + x[1] ** 2) - 0.48 * x[0] * x[1]

def eggholder(x):
    return (-(x[1] + 47) * np.sin(np.sqrt(abs(x[0] / 2 + (x[1] + 47))))
            - x[0] * np.sin(np.sqrt(abs(x[0] - (x[1] + 47)))))

def ridge_closed(w, X, y, alpha=1.0):
    resid = y - np.dot(X, w)
    return resid.dot(resid) + alpha * w.dot(w)

def kl_div(p_logits, q):
    p = np.exp(p_logits) / np.sum(np.exp(p_logits))
    return np.sum(p * np.log(p / q))

def conv_smooth(x):
    kernel = np.array([0.25, 0.5, 0.25])
    return np.sum(np.convolve(x, kernel, mode="same") ** 2)

def var_loss(x):
    return np.var(x) + np.std(x, ddof=1)

def pairwise(X):
    D = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    return np.sum(np.exp(-D))

def cos_sim(a, b):
    return np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
