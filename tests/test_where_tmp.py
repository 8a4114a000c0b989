def test_where():
    import relay
    print("RELAY", relay.__file__)
