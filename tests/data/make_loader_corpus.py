#!/usr/bin/env python3
"""Writes the loaders' test corpus: tests/data/<format>/<case>/ with tiny hand-made files.

Each `ok*` case is well-formed and exercises a format feature (quoting, CRLF, BOM, latin-1,
gzip, Python-literal metadata); every other case holds exactly one defect, at a known file,
line and field, that tests/cpp/data/test_bad_input*.cpp expect in the error message.
The files are committed; re-run this script after changing it:  python3 tests/data/make_loader_corpus.py
"""
import gzip
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent
FORMATS = ["movielens", "mind", "amazon-lcrec", "amazon", "hm", "jsonl", "csv"]


def case(fmt, name, files):
    d = ROOT / fmt / name
    d.mkdir(parents=True, exist_ok=True)
    for fname, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        if fname.endswith(".gz"):
            # mtime=0: the same bytes on every run.
            with gzip.GzipFile(d / fname, "wb", mtime=0) as f:
                f.write(data)
        else:
            (d / fname).write_bytes(data)


def with_line(text, line_no, new_line):
    """text with its 1-based line line_no replaced."""
    lines = text.split("\n")
    lines[line_no - 1] = new_line
    return "\n".join(lines)


# --- MovieLens -------------------------------------------------------------------------------
MOVIES = ('movieId,title,genres\n'
          '1,Toy Story (1995),Adventure|Animation\n'
          '2,"American President, The (1995)",Comedy|Drama\n'
          '3,"Say ""Cheese""\nTwice (2000)",Drama\n'
          '4,Heat (1995),Action|Crime\n')
RATINGS = ('userId,movieId,rating,timestamp\n'
           '1,2,3.5,964981247\n'
           '1,1,4.0,964982703\n'
           '2,3,5.0,964982224\n'
           '2,4,0.5,964980000\n')
TAGS = ('userId,movieId,tag,timestamp\n'
        '1,1,pixar,1\n'
        '2,1,fun,2\n'
        '2,1,pixar,3\n')


def movielens():
    crlf = lambda s: s.replace("\n", "\r\n")
    case("movielens", "ok", {"movies.csv": "\ufeff" + crlf(MOVIES), "ratings.csv": crlf(RATINGS), "tags.csv": TAGS})
    case("movielens", "truncated_row", {"movies.csv": MOVIES, "ratings.csv": with_line(RATINGS, 3, "1,1,4.0")})
    case("movielens", "missing_column", {"movies.csv": MOVIES.replace("movieId,title,genres", "movieId,title"),
                                         "ratings.csv": RATINGS})
    case("movielens", "invalid_utf8", {"movies.csv": MOVIES.encode().replace(b"Toy Story", b"Toy \xff Story"),
                                       "ratings.csv": RATINGS})
    case("movielens", "unknown_item", {"movies.csv": MOVIES, "ratings.csv": with_line(RATINGS, 4, "2,99,5.0,964982224")})
    case("movielens", "duplicate_item", {"movies.csv": MOVIES.replace("4,Heat", "1,Heat"), "ratings.csv": RATINGS})
    case("movielens", "empty_file", {"movies.csv": MOVIES, "ratings.csv": ""})
    case("movielens", "bad_number", {"movies.csv": MOVIES, "ratings.csv": with_line(RATINGS, 2, "1,2,four,964981247")})
    case("movielens", "unclosed_quote", {"movies.csv": MOVIES + '5,"Unclosed (2001),Drama\n', "ratings.csv": RATINGS})
    case("movielens", "wrong_files", {"links.csv": "movieId,imdbId,tmdbId\n1,0114709,862\n"})
    uitem = (b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
             b"2|Jour de f\xeate (1949)|01-Jan-1949||http://y|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n")
    udata = "1\t1\t5\t874965758\n1\t2\t3\t874965700\n2\t2\t4\t876893171\n"
    case("movielens", "ml100k_ok", {"u.item": uitem, "u.data": udata})
    case("movielens", "ml100k_truncated", {"u.item": uitem + b"3|Short (1999)|01-Jan-1999\n", "u.data": udata})


# --- MIND ------------------------------------------------------------------------------------
NEWS = ('N1\tnews\tnewsus\tA "quoted" title\tAn abstract.\thttps://a/1.html\t[]\t[]\n'
        'N2\tsports\tfootball_nfl\tSecond title\t\thttps://a/2.html\t[]\t[]\n'
        'N3\tfinance\tmarkets\tThird title\tThird abstract\thttps://a/3.html\t[]\t[]\n')
BEHAVIORS = ('10\tU1\t11/12/2019 2:14:46 PM\tN1 N9 N2\tN3-1 N2-0\n'
             '11\tU2\t11/13/2019 5:53:12 AM\t\tN1-1 N2-1\n'
             '12\tU1\t11/11/2019 12:00:00 AM\tN1 N9 N2\tN2-1 N8-0\n'
             '13\tU3\t11/14/2019 11:59:59 PM\tN3\tN1 N2\n')


def mind():
    case("mind", "ok", {"news.tsv": NEWS, "behaviors.tsv": BEHAVIORS})
    case("mind", "truncated_row", {"news.tsv": with_line(NEWS, 2, "N2\tsports\tfootball_nfl\tSecond title"),
                                   "behaviors.tsv": BEHAVIORS})
    case("mind", "duplicate_item", {"news.tsv": NEWS.replace("N3\tfinance", "N1\tfinance"), "behaviors.tsv": BEHAVIORS})
    case("mind", "invalid_utf8", {"news.tsv": NEWS.encode().replace(b"Second title", b"Second \xc3\x28 title"),
                                  "behaviors.tsv": BEHAVIORS})
    case("mind", "bad_time", {"news.tsv": NEWS, "behaviors.tsv": BEHAVIORS.replace("11/13/2019 5:53:12 AM", "2019-11-13")})
    case("mind", "bad_impression", {"news.tsv": NEWS, "behaviors.tsv": BEHAVIORS.replace("N2-1 N8-0", "N2-1 N8-2")})
    case("mind", "empty_file", {"news.tsv": NEWS, "behaviors.tsv": ""})
    case("mind", "wrong_files", {"news.tsv": NEWS, "behaviours.tsv": BEHAVIORS})


# --- Amazon, LC-Rec form ---------------------------------------------------------------------
ITEMS = ('{\n'
         '    "0": {\n'
         '        "title": "Stapler",\n'
         '        "description": "",\n'
         '        "brand": "Swingline",\n'
         '        "categories": "Office Products, Staplers"\n'
         '    },\n'
         '    "1": {\n'
         '        "title": "Pen \\u00e9 \\"gel\\"",\n'
         '        "description": "Blue ink",\n'
         '        "brand": "Pilot",\n'
         '        "categories": ["Office Products", "Pens"]\n'
         '    },\n'
         '    "2": {\n'
         '        "title": "Paper",\n'
         '        "description": "500 sheets",\n'
         '        "brand": "",\n'
         '        "categories": "Office Products, Paper"\n'
         '    }\n'
         '}\n')
INTER = ('{\n'
         '    "0": [\n'
         '        0,\n'
         '        1,\n'
         '        2\n'
         '    ],\n'
         '    "1": [\n'
         '        2,\n'
         '        "0"\n'
         '    ]\n'
         '}\n')


def amazon_lcrec():
    case("amazon-lcrec", "ok", {"Tiny.item.json": ITEMS, "Tiny.inter.json": INTER})
    case("amazon-lcrec", "truncated", {"Tiny.item.json": ITEMS[:ITEMS.index('"500 sheets"') + 5],
                                       "Tiny.inter.json": INTER})
    case("amazon-lcrec", "unknown_item", {"Tiny.item.json": ITEMS, "Tiny.inter.json": INTER.replace("        2,\n", "        7,\n")})
    case("amazon-lcrec", "invalid_utf8", {"Tiny.item.json": ITEMS.encode().replace(b'"Paper"', b'"Pa\xe9per"'),
                                          "Tiny.inter.json": INTER})
    case("amazon-lcrec", "duplicate_item", {"Tiny.item.json": ITEMS.replace('"2": {', '"1": {'), "Tiny.inter.json": INTER})
    case("amazon-lcrec", "not_object", {"Tiny.item.json": ITEMS.replace('"2": {\n        "title": "Paper",\n        "description": "500 sheets",\n        "brand": "",\n        "categories": "Office Products, Paper"\n    }',
                                                                        '"2": ["Paper"]'),
                                        "Tiny.inter.json": INTER})
    case("amazon-lcrec", "wrong_files", {"Tiny.item.json": ITEMS, "Other.item.json": ITEMS, "Tiny.inter.json": INTER})
    case("amazon-lcrec", "empty_file", {"Tiny.item.json": "", "Tiny.inter.json": INTER})


# --- Amazon, raw review + metadata form ------------------------------------------------------
META = ("{'asin': 'B01', 'title': 'Stapler', 'brand': 'Swingline', 'categories': [['Office Products', 'Staplers']], 'price': 9.99}\n"
        "{'asin': 'B02', 'title': u'Caf\\xe9 pen', 'description': 'It\\'s blue', 'related': {'also_bought': ['B01']}, 'salesRank': None, 'imUrl': True}\n"
        '{"asin": "B03", "title": "Paper", "description": ["500", "sheets"], "brand": "Hammermill", "category": ["Office Products", "Paper"]}\n')
REVIEWS = ('{"reviewerID": "A1", "asin": "B02", "overall": 5.0, "unixReviewTime": 1400000000}\n'
           '{"reviewerID": "A1", "asin": "B01", "overall": 2.0, "unixReviewTime": 1300000000}\n'
           '{"reviewerID": "A2", "asin": "B03", "overall": 4.0, "unixReviewTime": 1350000000}\n')


def amazon():
    case("amazon", "ok", {"meta_Tiny.json": META, "reviews_Tiny_5.json.gz": REVIEWS})
    case("amazon", "malformed_line", {"meta_Tiny.json": META, "reviews_Tiny.json": with_line(REVIEWS, 2, '{"reviewerID": "A1", "asin": "B0')})
    case("amazon", "missing_field", {"meta_Tiny.json": META, "reviews_Tiny.json": REVIEWS.replace('"reviewerID": "A2", ', '')})
    case("amazon", "unknown_item", {"meta_Tiny.json": META, "reviews_Tiny.json": REVIEWS.replace('"asin": "B03"', '"asin": "ZZZ"')})
    case("amazon", "bad_rating", {"meta_Tiny.json": META, "reviews_Tiny.json": REVIEWS.replace('"overall": 2.0', '"overall": "two"')})
    case("amazon", "invalid_utf8", {"meta_Tiny.json": META.encode().replace(b'"Paper"', b'"Pa\xffper"'), "reviews_Tiny.json": REVIEWS})
    case("amazon", "wrong_files", {"reviews_Tiny.json": REVIEWS, "notes.txt": "no metadata here\n"})


# --- H&M -------------------------------------------------------------------------------------
ART_HEAD = (",article_id,product_code,prod_name,product_type_name,product_group_name,graphical_appearance_name,"
            "colour_group_name,perceived_colour_value_name,index_name,detail_desc\n")
ARTICLES = (ART_HEAD +
            '0,108775015,108775,Strap top,Vest top,Garment Upper body,Solid,Black,Dark,Ladieswear,"Jersey top, narrow straps."\n'
            '1,108775044,108775,Strap top,Vest top,Garment Upper body,Solid,White,Light,Ladieswear,\n'
            '2,0110065001,110065,OP T-shirt,Bra,Underwear,Solid,Black,Dark,Lingeries/Tights,"Microfibre T-shirt bra\n'
            'with underwired, moulded cups."\n')
TRANS = ("t_dat,customer_id,article_id,price,sales_channel_id\n"
         "2018-09-21,c1,108775044,0.05,2\n"
         "2018-09-20,c1,108775015,0.03,2\n"
         "2018-09-20,c2,110065001,0.02,1\n"
         "2018-09-20,c1,110065001,0.02,1\n")


def hm():
    case("hm", "ok", {"articles.csv": ARTICLES, "transactions_train.csv": TRANS})
    case("hm", "missing_column", {"articles.csv": ARTICLES.replace(",detail_desc\n", ",description\n", 1), "transactions_train.csv": TRANS})
    case("hm", "truncated_row", {"articles.csv": ARTICLES, "transactions_train.csv": with_line(TRANS, 3, "2018-09-20,c1,108775015")})
    case("hm", "unknown_item", {"articles.csv": ARTICLES, "transactions_train.csv": with_line(TRANS, 4, "2018-09-20,c2,999999999,0.02,1")})
    case("hm", "bad_date", {"articles.csv": ARTICLES, "transactions_train.csv": with_line(TRANS, 2, "20/09/2018,c1,108775044,0.05,2")})
    case("hm", "duplicate_item", {"articles.csv": ARTICLES.replace("1,108775044", "1,108775015"), "transactions_train.csv": TRANS})


# --- generic ---------------------------------------------------------------------------------
JITEMS = ('{"item_id": "a", "name": "Alpha", "tags": ["x", "y"], "price": 3}\n'
          '{"item_id": 2, "name": "Beta", "colour": "red"}\n')
JINTER = ('{"user_id": "u1", "item_id": 2, "timestamp": "2020-01-02T03:04:05Z", "rating": 4}\n'
          '{"user_id": "u1", "item_id": "a", "timestamp": 1577836800, "rating": "3.5"}\n'
          '\n'
          '{"user_id": 7, "item_id": "a"}\n')


def generic():
    case("jsonl", "ok", {"items.jsonl": JITEMS, "interactions.jsonl": JINTER})
    case("jsonl", "malformed_line", {"items.jsonl": JITEMS, "interactions.jsonl": with_line(JINTER, 2, '{"user_id": "u1", "item_id": "a", "timestamp": 15778')})
    case("jsonl", "missing_field", {"items.jsonl": JITEMS, "interactions.jsonl": JINTER.replace('{"user_id": 7, ', '{')})
    case("jsonl", "bad_timestamp", {"items.jsonl": JITEMS, "interactions.jsonl": JINTER.replace('1577836800', '"yesterday"')})
    case("csv", "ok", {"items.tsv": "item_id\tname\tnote\na\tAlpha\t\"tab\there\"\nb\tBeta\t\n",
                       "interactions.tsv": "user_id\titem_id\ttimestamp\nu1\tb\t2020-01-02\nu1\ta\t2020-01-01\n"})
    case("csv", "missing_column", {"items.csv": "item_id,name\na,Alpha\n", "interactions.csv": "user,item_id\nu1,a\n"})
    case("csv", "unknown_item", {"items.csv": "item_id,name\na,Alpha\n", "interactions.csv": "user_id,item_id\nu1,a\nu1,zz\n"})


if __name__ == "__main__":
    for f in FORMATS:
        shutil.rmtree(ROOT / f, ignore_errors=True)
    movielens()
    mind()
    amazon_lcrec()
    amazon()
    hm()
    generic()
