import json
from pyteleport import tp_dummy
counter = 0
json.custom_flag = "patched"
class Account:
    rate = 2
    def __init__(self, balance):
        self.balance = balance
    def grow(self, years):
        global counter
        for _ in range(years):
            counter += 1
            if counter == 2:
                tp_dummy()
            self.balance *= self.rate
        return self.balance
acct = Account(5)
print(acct.grow(3), counter, json.custom_flag, json.dumps({"a": 1}))
