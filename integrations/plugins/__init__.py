"""Customer plugins: what a customer's package (800 and up) may add to the standard flows.

``rules`` holds the declared rules that change the order -> invoice mapping, as pure functions.
"""
