from castline_cli.main import main

if __name__ == "__main__":  # guarded: Dask/multiprocessing workers re-import the main module
    raise SystemExit(main())
