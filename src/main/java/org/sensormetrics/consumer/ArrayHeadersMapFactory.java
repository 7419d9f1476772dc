package org.sensormetrics.consumer;

import java.util.AbstractMap;
import java.util.AbstractSet;
import java.util.Arrays;
import java.util.ConcurrentModificationException;
import java.util.Iterator;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

import org.apache.camel.spi.HeadersMapFactory;

/**
 * Camel's message headers in a small array map whose keys match without regard to case, as they do in Camel's own
 * map (a TreeMap with a case-insensitive comparator, DefaultHeadersMapFactory), kept in the order they were put.
 * camel-kafka puts six to eight headers on each record's exchange, and the TreeMap's comparisons of names that share
 * their first six characters ("kafka.") were 15% of the poll threads' profile samples (docs/decisions.md 24). Here a
 * lookup compares each name's case-insensitive hash, computed once, and the names themselves only when those agree.
 *
 * <p>Camel finds it by META-INF/services/org/apache/camel/headers-map-factory, as it would find camel-headersmap's.
 * A message has a few headers, an HTTP request a few dozen, so a scan of an int array beats a hash table on both
 * time and allocation.
 */
public final class ArrayHeadersMapFactory implements HeadersMapFactory {

    @Override
    public Map<String, Object> newMap() {
        return new Headers(8);
    }

    @Override
    public Map<String, Object> newMap(Map<String, Object> map) {
        Headers headers = new Headers(Math.max(8, map.size()));
        headers.putAll(map);
        return headers;
    }

    @Override
    public boolean isInstanceOf(Map<String, Object> map) {
        return map instanceof Headers;
    }

    @Override
    public boolean isCaseInsensitive() {
        return true;
    }

    /** Not thread-safe, as Camel's own headers map is not. */
    static final class Headers extends AbstractMap<String, Object> {
        private String[] names;
        private Object[] values;
        private int[] hashes;
        private int size;
        private int changes;

        Headers(int capacity) {
            names = new String[capacity];
            values = new Object[capacity];
            hashes = new int[capacity];
        }

        /** Equal for names that String.equalsIgnoreCase takes for equal (it compares upper, then lower case). */
        static int hash(String name) {
            int h = 0;
            for (int i = 0; i < name.length(); i++) {
                char c = name.charAt(i);
                if (c < 128) {
                    h = 31 * h + (c >= 'A' && c <= 'Z' ? c + 32 : c);
                } else {
                    h = 31 * h + Character.toLowerCase(Character.toUpperCase(c));
                }
            }
            return h;
        }

        private int indexOf(Object key) {
            if (!(key instanceof String name)) {
                return -1;
            }
            int h = hash(name);
            for (int i = 0; i < size; i++) {
                if (hashes[i] == h && names[i].equalsIgnoreCase(name)) {
                    return i;
                }
            }
            return -1;
        }

        @Override
        public int size() {
            return size;
        }

        @Override
        public boolean containsKey(Object key) {
            return indexOf(key) >= 0;
        }

        @Override
        public Object get(Object key) {
            int i = indexOf(key);
            return i < 0 ? null : values[i];
        }

        /** As in Camel's map, a header put again under another case keeps the name it was first put with. */
        @Override
        public Object put(String name, Object value) {
            int h = hash(name);
            for (int i = 0; i < size; i++) {
                if (hashes[i] == h && names[i].equalsIgnoreCase(name)) {
                    Object before = values[i];
                    values[i] = value;
                    return before;
                }
            }
            if (size == names.length) {
                names = Arrays.copyOf(names, size * 2);
                values = Arrays.copyOf(values, size * 2);
                hashes = Arrays.copyOf(hashes, size * 2);
            }
            names[size] = name;
            values[size] = value;
            hashes[size] = h;
            size++;
            changes++;
            return null;
        }

        @Override
        public Object remove(Object key) {
            int i = indexOf(key);
            if (i < 0) {
                return null;
            }
            Object before = values[i];
            removeAt(i);
            return before;
        }

        private void removeAt(int i) {
            int after = size - i - 1;
            System.arraycopy(names, i + 1, names, i, after);
            System.arraycopy(values, i + 1, values, i, after);
            System.arraycopy(hashes, i + 1, hashes, i, after);
            size--;
            names[size] = null;
            values[size] = null;
            changes++;
        }

        @Override
        public void clear() {
            Arrays.fill(names, 0, size, null);
            Arrays.fill(values, 0, size, null);
            size = 0;
            changes++;
        }

        @Override
        public Set<Entry<String, Object>> entrySet() {
            return new AbstractSet<>() {
                @Override
                public int size() {
                    return size;
                }

                @Override
                public Iterator<Entry<String, Object>> iterator() {
                    return new Cursor<>() {
                        @Override
                        Entry<String, Object> at(int at) {
                            return new SimpleEntry<>(names[at], values[at]) {
                                @Override
                                public Object setValue(Object value) {
                                    values[at] = value;
                                    return super.setValue(value);
                                }
                            };
                        }
                    };
                }

                @Override
                public void clear() {
                    Headers.this.clear();
                }
            };
        }

        /** The names themselves, with no entry made per name (KafkaBatchOffsets.release retains a few per record). */
        @Override
        public Set<String> keySet() {
            return new AbstractSet<>() {
                @Override
                public int size() {
                    return size;
                }

                @Override
                public boolean contains(Object name) {
                    return containsKey(name);
                }

                @Override
                public boolean remove(Object name) {
                    int before = size;
                    Headers.this.remove(name);
                    return size < before;
                }

                @Override
                public Iterator<String> iterator() {
                    return new Cursor<>() {
                        @Override
                        String at(int at) {
                            return names[at];
                        }
                    };
                }

                @Override
                public void clear() {
                    Headers.this.clear();
                }
            };
        }

        /** An iterator over the headers in the order they were put, that removes through removeAt. */
        private abstract class Cursor<T> implements Iterator<T> {
            private int next;
            private int last = -1;
            private int expected = changes;

            abstract T at(int at);

            @Override
            public boolean hasNext() {
                return next < size;
            }

            @Override
            public T next() {
                if (expected != changes) {
                    throw new ConcurrentModificationException();
                }
                if (next >= size) {
                    throw new NoSuchElementException();
                }
                last = next++;
                return at(last);
            }

            @Override
            public void remove() {
                if (last < 0) {
                    throw new IllegalStateException();
                }
                if (expected != changes) {
                    throw new ConcurrentModificationException();
                }
                removeAt(last);
                next = last;
                last = -1;
                expected = changes;
            }
        }
    }
}
