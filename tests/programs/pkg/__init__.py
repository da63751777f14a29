helper_value = 20
